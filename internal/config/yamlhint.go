package config

import (
	"fmt"
	"strings"
)

// indentationHint points at the line whose indentation broke the YAML when
// yaml.v3 names only the block it was reading ("line 2: did not find
// expected key" for a key mis-indented on line 5), or "" when it cannot
// tell.
func indentationHint(data []byte, err error) string {
	var line int
	if _, serr := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); serr != nil {
		return ""
	}
	msg := err.Error()
	lines := strings.Split(string(data), "\n")
	if strings.Contains(msg, "cannot start any token") && line >= 1 && line <= len(lines) && strings.Contains(lines[line-1], "\t") {
		return " (a tab: YAML indents with spaces)"
	}
	if !strings.Contains(msg, "did not find expected key") && !strings.Contains(msg, "mapping values are not allowed") &&
		!strings.Contains(msg, "did not find expected '-' indicator") {
		return ""
	}
	bad := misindentedLine(lines, line)
	if bad == 0 {
		return " (check the indentation of that block: keys of one mapping start in the same column)"
	}
	return fmt.Sprintf(" (the indentation of line %d does not match the lines above it)", bad)
}

// misindentedLine is the first line from line `from` (1-based) on that is
// indented to no open level, or deeper than a line that holds a value
// already; 0 if none.
func misindentedLine(lines []string, from int) int {
	var levels []int
	prevHasValue := false
	for i := max(from-1, 0); i < len(lines); i++ {
		text := strings.TrimRight(lines[i], " \r")
		trimmed := strings.TrimLeft(text, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(text) - len(trimmed)
		switch {
		case len(levels) == 0 || indent > levels[len(levels)-1]:
			if len(levels) > 0 && prevHasValue {
				return i + 1
			}
			levels = append(levels, indent)
		default:
			for len(levels) > 0 && levels[len(levels)-1] > indent {
				levels = levels[:len(levels)-1]
			}
			if len(levels) == 0 || levels[len(levels)-1] != indent {
				return i + 1
			}
		}
		prevHasValue = holdsValue(trimmed)
	}
	return 0
}

// holdsValue says whether a line `key: value` or `- value` is complete, so
// that a deeper line after it cannot belong to it.
func holdsValue(trimmed string) bool {
	if strings.HasPrefix(trimmed, "- ") {
		trimmed = strings.TrimPrefix(trimmed, "- ")
		if !strings.Contains(trimmed, ": ") && !strings.HasSuffix(trimmed, ":") {
			return true
		}
	}
	_, value, ok := strings.Cut(trimmed, ": ")
	if !ok {
		return false
	}
	value = strings.TrimSpace(value)
	if value == "" || strings.HasPrefix(value, "#") || strings.HasPrefix(value, "|") || strings.HasPrefix(value, ">") || strings.HasPrefix(value, "&") {
		return false
	}
	// An unclosed flow collection or quote continues on the next lines.
	return strings.Count(value, "[") == strings.Count(value, "]") && strings.Count(value, "{") == strings.Count(value, "}") &&
		strings.Count(value, `"`)%2 == 0
}
