package transform

import (
	"encoding/json"
	"testing"

	"cel.dev/cel-go/common/types"
)

// The adapter's shortcut for JSON numbers gives what CEL's own adapter
// gives: an int when the number is one that fits, else a double.
func TestFieldsAdapterJSONNumbers(t *testing.T) {
	reg, err := types.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	a := fieldsAdapter{reg}
	for _, n := range []string{"0", "-7", "12.25", "1e3", "1E-2", "-0.0", "9223372036854775807",
		"9223372036854775808", "123456789012345678901234567890", "1.5e400", "2.5E+2"} {
		got, want := a.NativeToValue(json.Number(n)), reg.NativeToValue(json.Number(n))
		if types.IsError(want) && got.Type() == want.Type() && got.(*types.Err).String() == want.(*types.Err).String() {
			continue // out of range: both fail alike
		}
		if got.Type() != want.Type() || got.Equal(want) != types.True {
			t.Errorf("%s: got %v (%s), want %v (%s)", n, got, got.Type().TypeName(), want, want.Type().TypeName())
		}
	}
}
