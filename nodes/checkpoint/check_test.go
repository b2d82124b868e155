package checkpoint

import (
	"errors"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func TestCheckAgainst(t *testing.T) {
	f32 := func(dims ...int) *tensors.Tensor { return tensors.FromShape(shapes.Make(dtypes.Float32, dims...)) }
	got := map[string]*tensors.Tensor{
		"ok":          f32(2, 3),
		"ok.scalar":   f32(),
		"any.dtype":   tensors.FromShape(shapes.Make(dtypes.Float64, 5)),
		"b.wrongdims": f32(4),
		"a.wrongrank": f32(4, 1),
		"c.wrongtype": tensors.FromShape(shapes.Make(dtypes.Int64, 3)),
		"z.extra":     f32(7),
		"y.extra":     nil,
		"nil":         nil,
	}
	want := map[string]shapes.Shape{
		"ok":          shapes.Make(dtypes.Float32, 2, 3),
		"ok.scalar":   shapes.Make(dtypes.Float32),
		"any.dtype":   {Dimensions: []int{5}}, // InvalidDType: any dtype
		"b.wrongdims": shapes.Make(dtypes.Float32, 5),
		"a.wrongrank": shapes.Make(dtypes.Float32, 4),
		"c.wrongtype": shapes.Make(dtypes.Float32, 3),
		"nil":         shapes.Make(dtypes.Float32, 1),
		"m.missing":   shapes.Make(dtypes.Float32, 8, 8),
		"l.missing":   shapes.Make(dtypes.Float32),
	}
	err := CheckAgainst(got, want)
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("error %v is not a *MismatchError", err)
	}
	if want := []string{"l.missing", "m.missing"}; !slices.Equal(me.Missing, want) {
		t.Errorf("Missing %q, want %q", me.Missing, want)
	}
	if want := []string{"y.extra", "z.extra"}; !slices.Equal(me.Extra, want) {
		t.Errorf("Extra %q, want %q", me.Extra, want)
	}
	if want := []string{"a.wrongrank", "b.wrongdims", "c.wrongtype", "nil"}; !slices.Equal(me.Misshaped, want) {
		t.Errorf("Misshaped %q, want %q", me.Misshaped, want)
	}
	wantMsg := `checkpoint does not match the model: 2 missing, 2 extra, 4 mis-shaped tensors
  missing:    l.missing (want (Float32))
  missing:    m.missing (want (Float32)[8 8])
  extra:      y.extra a nil tensor
  extra:      z.extra (Float32)[7]
  mis-shaped: a.wrongrank: got (Float32)[4 1], want (Float32)[4]
  mis-shaped: b.wrongdims: got (Float32)[4], want (Float32)[5]
  mis-shaped: c.wrongtype: got (Int64)[3], want (Float32)[3]
  mis-shaped: nil: got a nil tensor, want (Float32)[1]`
	if err.Error() != wantMsg {
		t.Errorf("message\n%s\nwant\n%s", err, wantMsg)
	}

	// Matching sets: nil.
	delete(want, "m.missing")
	delete(want, "l.missing")
	for _, n := range []string{"a.wrongrank", "b.wrongdims", "c.wrongtype", "nil"} {
		delete(want, n)
		delete(got, n)
	}
	delete(got, "y.extra")
	delete(got, "z.extra")
	if err := CheckAgainst(got, want); err != nil {
		t.Errorf("matching sets: %v", err)
	}
	if err := CheckAgainst(nil, nil); err != nil {
		t.Errorf("empty sets: %v", err)
	}
}

// A real fixture checked against the shapes its model has, with one layer renamed.
func TestCheckAgainstFixture(t *testing.T) {
	ts, err := Read(fixtureDir + "/nested.pt")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]shapes.Shape{
		"0.weight": shapes.Make(dtypes.Float32, 4, 3), "0.bias": shapes.Make(dtypes.Float32, 4),
		"1.weight": shapes.Make(dtypes.Float32, 4), "1.bias": shapes.Make(dtypes.Float32, 4),
		"2.weight": shapes.Make(dtypes.Float32, 2, 4), "2.bias": shapes.Make(dtypes.Float32, 2),
	}
	if err := CheckAgainst(ts, want); err != nil {
		t.Fatal(err)
	}
	want["head.weight"], want["head.bias"] = want["2.weight"], want["2.bias"]
	delete(want, "2.weight")
	delete(want, "2.bias")
	var me *MismatchError
	if err := CheckAgainst(ts, want); !errors.As(err, &me) ||
		!slices.Equal(me.Missing, []string{"head.bias", "head.weight"}) ||
		!slices.Equal(me.Extra, []string{"2.bias", "2.weight"}) {
		t.Errorf("renamed layer: %v", err)
	}
}
