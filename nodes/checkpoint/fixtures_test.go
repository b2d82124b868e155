package checkpoint

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

const fixtureDir = "../../testdata/checkpoint"

// expectedTensor is one entry of testdata/checkpoint/expected.json, written by PyTorch.
type expectedTensor struct {
	DType  string   `json:"dtype"`
	Shape  []int    `json:"shape"`
	Bits   []uint64 `json:"bits"`   // float32 / float64 bit patterns
	Values []int64  `json:"values"` // integers and bools
}

func loadExpected(t *testing.T) map[string]map[string]expectedTensor {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp map[string]map[string]expectedTensor
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	return exp
}

var dtypeNames = map[string]dtypes.DType{
	"float32": dtypes.Float32, "float64": dtypes.Float64, "int64": dtypes.Int64,
	"int32": dtypes.Int32, "int16": dtypes.Int16, "int8": dtypes.Int8,
	"uint8": dtypes.Uint8, "bool": dtypes.Bool,
}

// compareWithExpected checks names, dtypes, shapes and values exactly (bit for bit).
func compareWithExpected(t *testing.T, file string, got map[string]*tensors.Tensor, want map[string]expectedTensor) {
	t.Helper()
	gotNames := slices.Sorted(maps.Keys(got))
	wantNames := slices.Sorted(maps.Keys(want))
	if !slices.Equal(gotNames, wantNames) {
		t.Fatalf("%s: names\n got  %q\n want %q", file, gotNames, wantNames)
	}
	for _, name := range wantNames {
		w, g := want[name], got[name]
		dt, ok := dtypeNames[w.DType]
		if !ok {
			t.Fatalf("%s: %s: unknown expected dtype %q", file, name, w.DType)
		}
		if g.DType() != dt {
			t.Errorf("%s: %s: dtype %s, want %s", file, name, g.DType(), dt)
			continue
		}
		if dims := g.Shape().Dimensions; !slices.Equal(dims, w.Shape) && !(len(dims) == 0 && len(w.Shape) == 0) {
			t.Errorf("%s: %s: dimensions %v, want %v", file, name, dims, w.Shape)
			continue
		}
		var gotBits []uint64
		var gotValues []int64
		switch dt {
		case dtypes.Float32:
			for _, v := range tensors.MustCopyFlatData[float32](g) {
				gotBits = append(gotBits, uint64(math.Float32bits(v)))
			}
		case dtypes.Float64:
			for _, v := range tensors.MustCopyFlatData[float64](g) {
				gotBits = append(gotBits, math.Float64bits(v))
			}
		case dtypes.Int64:
			gotValues = tensors.MustCopyFlatData[int64](g)
		case dtypes.Int32:
			for _, v := range tensors.MustCopyFlatData[int32](g) {
				gotValues = append(gotValues, int64(v))
			}
		case dtypes.Uint8:
			for _, v := range tensors.MustCopyFlatData[uint8](g) {
				gotValues = append(gotValues, int64(v))
			}
		case dtypes.Bool:
			for _, v := range tensors.MustCopyFlatData[bool](g) {
				b := int64(0)
				if v {
					b = 1
				}
				gotValues = append(gotValues, b)
			}
		default:
			t.Fatalf("%s: %s: no comparison for %s", file, name, dt)
		}
		if len(gotBits)+len(w.Bits) > 0 && !slices.Equal(gotBits, w.Bits) {
			t.Errorf("%s: %s: values (bits)\n got  %x\n want %x", file, name, gotBits, w.Bits)
		}
		if len(gotValues)+len(w.Values) > 0 && !slices.Equal(gotValues, w.Values) {
			t.Errorf("%s: %s: values\n got  %v\n want %v", file, name, gotValues, w.Values)
		}
	}
}

func TestReadPyTorchFixtures(t *testing.T) {
	exp := loadExpected(t)
	for _, file := range []string{"plain.pt", "nested.pt", "mixed.pt", "ema.pt",
		"legacy_plain.pt", "legacy_nested.pt", "legacy_mixed.pt", "legacy_py2.pt"} {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join(fixtureDir, file)
			got, err := ReadPyTorch(path)
			if err != nil {
				t.Fatal(err)
			}
			compareWithExpected(t, file, got, exp[file])
			got, err = Read(path) // dispatch by content
			if err != nil {
				t.Fatal(err)
			}
			compareWithExpected(t, file, got, exp[file])
		})
	}
}

func TestReadSafetensorsFixture(t *testing.T) {
	exp := loadExpected(t)
	const file = "hand.safetensors"
	path := filepath.Join(fixtureDir, file)
	got, meta, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	compareWithExpected(t, file, got, exp[file])
	wantMeta := map[string]string{"format": "pt", "source": "make_fixtures.py"}
	if !maps.Equal(meta, wantMeta) {
		t.Errorf("metadata %v, want %v", meta, wantMeta)
	}
	got, err = Read(path)
	if err != nil {
		t.Fatal(err)
	}
	compareWithExpected(t, file, got, exp[file])
}

// The fixtures' special cases are really there (guards against a regenerated fixture
// silently losing what the tests are meant to cover).
func TestFixtureCoverage(t *testing.T) {
	exp := loadExpected(t)
	for file, names := range map[string][]string{
		"mixed.pt": {"half", "half_t", "bf16", "double", "transposed", "sliced", "permuted",
			"expanded", "shared_a", "shared_b", "shared_c", "scalar", "empty", "int64", "bool", "param"},
		"legacy_mixed.pt": {"half", "half_t", "bf16", "double", "double_t", "transposed", "sliced",
			"expanded", "shared_a", "shared_b", "shared_c", "scalar", "empty", "int64", "int64_t", "bool", "param"},
		// "module." stripped, and the int64 num_batches_tracked.
		"nested.pt":        {"0.weight"},
		"legacy_nested.pt": {"0.weight"},
		"plain.pt":         {"1.num_batches_tracked"},
		"legacy_plain.pt":  {"1.num_batches_tracked"},
	} {
		for _, name := range names {
			if _, ok := exp[file][name]; !ok {
				t.Errorf("%s lacks %q", file, name)
			}
		}
	}
	for _, file := range []string{"legacy_plain.pt", "legacy_nested.pt", "legacy_mixed.pt", "legacy_py2.pt"} {
		head, err := readHead(filepath.Join(fixtureDir, file), len(legacyTorchMagic))
		if err != nil || !bytes.Equal(head, legacyTorchMagic) {
			t.Errorf("%s is not in the legacy format (%v)", file, err)
		}
	}
	if py2 := readFixture(t, "legacy_py2.pt"); !bytes.Contains(py2, []byte("ccollections\nOrderedDict\n")) {
		t.Error("legacy_py2.pt does not hold a Python 2 OrderedDict pickle")
	}
}

// readFixture returns the content of a file of testdata/checkpoint.
func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tempWriter returns a function writing files into a fresh temporary folder.
func tempWriter(t *testing.T) func(name string, b []byte) string {
	dir := t.TempDir()
	return func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func TestReadPyTorchEntry(t *testing.T) {
	exp := loadExpected(t)
	got, err := ReadPyTorchEntry(filepath.Join(fixtureDir, "ema.pt"), "ema")
	if err != nil {
		t.Fatal(err)
	}
	compareWithExpected(t, "ema.pt", got, exp["ema.pt"])
	got, err = ReadPyTorchEntry(filepath.Join(fixtureDir, "nested.pt"), "state_dict")
	if err != nil {
		t.Fatal(err)
	}
	compareWithExpected(t, "nested.pt", got, exp["nested.pt"])
	got, err = ReadPyTorchEntry(filepath.Join(fixtureDir, "legacy_nested.pt"), "state_dict")
	if err != nil {
		t.Fatal(err)
	}
	compareWithExpected(t, "legacy_nested.pt", got, exp["legacy_nested.pt"])
}
