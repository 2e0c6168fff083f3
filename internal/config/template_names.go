package config

import (
	"encoding/json"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
)

// recordTemplateNames are the top-level names a record template (topics,
// table names) can use: connector.NameTemplate's data.
var recordTemplateNames = map[string]bool{
	"Topic": true, "Partition": true, "Offset": true, "Key": true,
	"Timestamp": true, "Headers": true, "Value": true, "Schema": true,
}

// unknownTemplateNames returns the top-level names t uses that a record
// does not have ({{.Nope}}): such a template fails for every record at run
// time, so validate says so first. Inside range and with, dot is something
// else and is not checked.
func unknownTemplateNames(t *template.Template, valueFields map[string]bool) []string {
	found := map[string]bool{}
	var walk func(n parse.Node)
	check := func(ident []string) {
		if len(ident) > 0 && !recordTemplateNames[ident[0]] {
			found[ident[0]] = true
		}
		if len(ident) > 1 && ident[0] == "Value" && valueFields != nil && !valueFields[ident[1]] {
			found["Value."+ident[1]] = true
		}
	}
	walkPipe := func(p *parse.PipeNode) {
		if p == nil {
			return
		}
		for _, cmd := range p.Cmds {
			for _, arg := range cmd.Args {
				walk(arg)
			}
		}
	}
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walkPipe(n.Pipe)
		case *parse.PipeNode:
			walkPipe(n)
		case *parse.FieldNode:
			check(n.Ident)
		case *parse.VariableNode:
			if len(n.Ident) > 1 && n.Ident[0] == "$" {
				check(n.Ident[1:])
			}
		case *parse.ChainNode:
			walk(n.Node)
		case *parse.IfNode:
			walkPipe(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walkPipe(n.Pipe) // the body's dot is each element
		case *parse.WithNode:
			walkPipe(n.Pipe)
			walk(n.ElseList)
		}
	}
	if t.Tree != nil {
		walk(t.Tree.Root)
	}
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, "."+n)
	}
	sort.Strings(names)
	return names
}

func recordTemplateNameList() string {
	names := make([]string, 0, len(recordTemplateNames))
	for n := range recordTemplateNames {
		names = append(names, "."+n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// readerSchemaFields are the top-level field names of an Avro record
// schema (format.reader_schema), or nil when it is not one: then
// templates' .Value fields are not checked.
func readerSchemaFields(schema string) map[string]bool {
	var rec struct {
		Type   any `json:"type"`
		Fields []struct {
			Name string `json:"name"`
		} `json:"fields"`
	}
	if json.Unmarshal([]byte(schema), &rec) != nil || rec.Type != "record" || len(rec.Fields) == 0 {
		return nil
	}
	out := make(map[string]bool, len(rec.Fields))
	for _, f := range rec.Fields {
		out[f.Name] = true
	}
	return out
}
