package transform

import (
	"fmt"
	"strings"
	"testing"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// TestASCIICaseMatchesTheStringsExtension: upperAscii and lowerAscii give
// what the strings extension's own implementations give, for ASCII,
// non-ASCII and invalid UTF-8 text, short and long, and the same error for
// a value that is not a string.
func TestASCIICaseMatchesTheStringsExtension(t *testing.T) {
	extension, err := cel.NewEnv(cel.Variable("s", cel.DynType), ext.Strings())
	if err != nil {
		t.Fatal(err)
	}
	ours, err := cel.NewEnv(append([]cel.EnvOption{cel.Variable("s", cel.DynType), ext.Strings()}, asciiCaseFunctions...)...)
	if err != nil {
		t.Fatal(err)
	}
	var all [128]byte
	for i := range all {
		all[i] = byte(i)
	}
	inputs := []any{
		"", "de", "DE", "dE", "a", "Z", "@[`{", string(all[:]),
		"straße", "ÉTÉ été", "日本 abc", "\xff abc", "abc\xff", "a\xc3", "\u00e9",
		strings.Repeat("Mixed Case ", 10), strings.Repeat("x", 24), strings.Repeat("x", 25),
		int64(5), 1.5, true, nil, []any{"a"}, map[string]any{"a": "b"},
	}
	for _, fn := range []string{"upperAscii", "lowerAscii"} {
		theirs := compileForTest(t, extension, "s."+fn+"()")
		mine := compileForTest(t, ours, "s."+fn+"()")
		for _, in := range inputs {
			vars := map[string]any{"s": in}
			want, _, wantErr := theirs.Eval(vars)
			got, _, gotErr := mine.Eval(vars)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("%q.%s(): error %v, the extension's %v", in, fn, gotErr, wantErr)
				continue
			}
			if wantErr != nil {
				continue
			}
			if got.Equal(want) != types.True || got.Type() != want.Type() {
				t.Errorf("%q.%s() = %q, the extension gives %q", in, fn, got, want)
			}
		}
	}
}

func compileForTest(t *testing.T, e *cel.Env, expr string) cel.Program {
	t.Helper()
	checked, iss := e.Compile(expr)
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	prg, err := e.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		t.Fatal(err)
	}
	return prg
}
