package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// expandEnvNodes expands ${NAME}, ${NAME:-default} and ${NAME:?message}
// inside the scalar values of a parsed YAML tree, before it is decoded.
//
// Expansion happens after parsing, never in the file's text: a value from
// the environment is always one whole scalar's worth of characters, so a
// password with " #" is not cut at a comment and a variable holding
// "t], group: x" cannot add keys. Mapping keys and comments are left alone.
// Expanded text is not scanned again, and "$$" is not special. Each node is
// expanded once even when an alias refers to it.
func expandEnvNodes(root *yaml.Node, lookup func(string) (string, bool)) []string {
	x := envExpander{lookup: lookup, done: map[*yaml.Node]bool{}}
	x.walk(root, "")
	return x.probs
}

type envExpander struct {
	lookup func(string) (string, bool)
	done   map[*yaml.Node]bool
	probs  []string
}

func (x *envExpander) walk(n *yaml.Node, path string) {
	if n == nil || x.done[n] {
		return
	}
	x.done[n] = true
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			x.walk(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			x.walk(n.Content[i+1], join(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			x.walk(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.ScalarNode:
		x.scalar(n, path)
	}
}

func (x *envExpander) scalar(n *yaml.Node, path string) {
	if !strings.Contains(n.Value, "${") {
		return
	}
	out, probs := expandString(n.Value, x.lookup)
	for _, p := range probs {
		where := fmt.Sprintf("line %d", n.Line)
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 && !strings.Contains(n.Value[:p.offset], "\n") {
			col := n.Column + p.offset
			if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
				col++ // the opening quote (escapes before it may shift this)
			}
			where += fmt.Sprintf(", column %d", col)
		}
		if path == "" {
			x.probs = append(x.probs, fmt.Sprintf("%s (%s)", p.msg, where))
		} else {
			x.probs = append(x.probs, fmt.Sprintf("%s: %s (%s)", path, p.msg, where))
		}
	}
	n.Value = out
	// A plain scalar is typed by what it expands to (consumers: ${N} is a
	// number), as if the value had been written there, except that an
	// empty or null-looking value stays a string. Quoted scalars and
	// explicit tags stay as written.
	if n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		switch out {
		case "", "~", "null", "Null", "NULL":
			n.Tag = "!!str"
		default:
			n.Tag = ""
		}
	}
}

// envProblem is a bad reference, at a byte offset in the scalar's value.
type envProblem struct {
	offset int
	msg    string
}

// expandString expands every reference in s. Problems never quote the
// text around a reference, which may hold a secret.
func expandString(s string, lookup func(string) (string, bool)) (string, []envProblem) {
	var b strings.Builder
	var probs []envProblem
	pos := 0
	for {
		i := strings.Index(s[pos:], "${")
		if i < 0 {
			b.WriteString(s[pos:])
			return b.String(), probs
		}
		i += pos
		b.WriteString(s[pos:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			probs = append(probs, envProblem{i, "unterminated ${: no closing } (write ${NAME})"})
			b.WriteString(s[i:])
			return b.String(), probs
		}
		val, prob := resolveRef(s[i+2:i+end], lookup)
		if prob != "" {
			probs = append(probs, envProblem{i, prob})
		}
		b.WriteString(val)
		pos = i + end + 1
	}
}

// resolveRef resolves the inside of one ${...}.
func resolveRef(ref string, lookup func(string) (string, bool)) (string, string) {
	name, op, _ := strings.Cut(ref, ":")
	if !validEnvName(name) {
		return "", "${...}: not a variable name (letters, digits and _, not starting with a digit)"
	}
	var arg string
	switch {
	case op == "" && !strings.Contains(ref, ":"):
	case strings.HasPrefix(op, "-"):
		op, arg = ":-", op[1:]
	case strings.HasPrefix(op, "?"):
		op, arg = ":?", op[1:]
	default:
		return "", fmt.Sprintf("${%s:...}: unknown form; use ${NAME}, ${NAME:-default} or ${NAME:?message}", name)
	}
	if v, ok := lookup(name); ok {
		return v, ""
	}
	switch op {
	case ":-":
		return arg, ""
	case ":?":
		if arg == "" {
			arg = "is required"
		}
		return "", fmt.Sprintf("${%s}: environment variable is not set: %s", name, arg)
	}
	return "", fmt.Sprintf("${%s}: environment variable is not set (use ${%s:-default} for a default)", name, name)
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
