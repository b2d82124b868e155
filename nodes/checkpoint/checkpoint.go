package checkpoint

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Read reads a checkpoint file, telling the format from its content: a zip archive or a
// legacy torch.save stream is read as a PyTorch checkpoint (ReadPyTorch), a file starting
// with a plausible safetensors header
// as safetensors (ReadSafetensors, metadata dropped). Anything else is an error naming the
// file.
func Read(path string) (map[string]*tensors.Tensor, error) {
	head, err := readHead(path, 16)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")),
		bytes.HasPrefix(head, legacyTorchMagic):
		return ReadPyTorch(path)
	case looksLikeSafetensors(head):
		ts, _, err := ReadSafetensors(path)
		return ts, err
	}
	return nil, fmt.Errorf("checkpoint: %s: neither a PyTorch checkpoint (zip or legacy torch.save) nor a safetensors file", path)
}

// looksLikeSafetensors: an 8-byte little-endian header length within limits, then '{'.
func looksLikeSafetensors(head []byte) bool {
	if len(head) < 9 {
		return false
	}
	n := binary.LittleEndian.Uint64(head)
	return n >= 2 && n <= maxHeaderSize && head[8] == '{'
}

// MismatchError is returned by CheckAgainst. Each list is sorted by name.
type MismatchError struct {
	Missing   []string // wanted but absent from the checkpoint
	Extra     []string // in the checkpoint but not wanted
	Misshaped []string // present in both with different shapes (or dtypes)

	lines []string
}

// Error is a summary line followed by one line per tensor: missing ones first, then extra,
// then mis-shaped, each group sorted by name.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("checkpoint does not match the model: %d missing, %d extra, %d mis-shaped tensors\n%s",
		len(e.Missing), len(e.Extra), len(e.Misshaped), strings.Join(e.lines, "\n"))
}

// CheckAgainst compares checkpoint tensors with the shapes a model wants and returns nil if
// they match exactly, or a *MismatchError listing every missing, extra and mis-shaped
// tensor by name, so that loading never silently leaves weights at their initial values.
//
// A wanted shape whose DType is dtypes.InvalidDType (e.g. shapes.Shape{Dimensions: d})
// matches any dtype; otherwise dtype and dimensions must both match.
func CheckAgainst(got map[string]*tensors.Tensor, want map[string]shapes.Shape) error {
	e := &MismatchError{}
	for name, ws := range want {
		t, ok := got[name]
		switch {
		case !ok:
			e.Missing = append(e.Missing, name)
		case t == nil || !shapeMatches(t.Shape(), ws):
			e.Misshaped = append(e.Misshaped, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			e.Extra = append(e.Extra, name)
		}
	}
	if len(e.Missing)+len(e.Extra)+len(e.Misshaped) == 0 {
		return nil
	}
	sort.Strings(e.Missing)
	sort.Strings(e.Extra)
	sort.Strings(e.Misshaped)
	describe := func(t *tensors.Tensor) string {
		if t == nil {
			return "a nil tensor"
		}
		return t.Shape().String()
	}
	for _, name := range e.Missing {
		e.lines = append(e.lines, fmt.Sprintf("  missing:    %s (want %s)", name, want[name]))
	}
	for _, name := range e.Extra {
		e.lines = append(e.lines, fmt.Sprintf("  extra:      %s %s", name, describe(got[name])))
	}
	for _, name := range e.Misshaped {
		e.lines = append(e.lines, fmt.Sprintf("  mis-shaped: %s: got %s, want %s", name, describe(got[name]), want[name]))
	}
	return e
}

// shapeMatches compares dimensions, and dtypes unless want's is InvalidDType.
func shapeMatches(got, want shapes.Shape) bool {
	if want.DType != dtypes.InvalidDType && got.DType != want.DType {
		return false
	}
	return got.Rank() == want.Rank() && slices.Equal(got.Dimensions, want.Dimensions) || got.Rank() == 0 && want.Rank() == 0
}
