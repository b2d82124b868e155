package xla

import (
	"reflect"

	"github.com/gomlx/gomlx/backends/simplego"
)

// Readers of a SimpleGo node's private fields, by reflection and read-only: the fast
// executors need an op's parameters (axes, permutation, strides…) and SimpleGo does not
// export them. If a GoMLX upgrade changes these layouts the readers say ok = false and the
// fast executors decline, which the engage tests notice.

// Field indices of simplego.Node's private output shape and parameters, looked up once:
// FieldByName on every op call showed in profiles, and executors run every sampler step.
// -1 when a GoMLX upgrade renamed them; then the fast executors that need them decline.
var nodeShapeField, nodeDataField = nodeFieldIndex("shape"), nodeFieldIndex("data")

func nodeFieldIndex(name string) int {
	f, ok := reflect.TypeFor[simplego.Node]().FieldByName(name)
	if !ok || len(f.Index) != 1 {
		return -1
	}
	return f.Index[0]
}

// nodeOutputDims reads a SimpleGo node's private output shape dimensions by reflection
// (read-only); ok is false if the field is missing.
func nodeOutputDims(node *simplego.Node) (dims []int, ok bool) {
	if nodeShapeField < 0 {
		return nil, false
	}
	v := reflect.ValueOf(node).Elem().Field(nodeShapeField)
	if v.Kind() != reflect.Struct {
		return nil, false
	}
	d := v.FieldByName("Dimensions")
	if !d.IsValid() || d.Kind() != reflect.Slice || d.Type().Elem().Kind() != reflect.Int {
		return nil, false
	}
	dims = make([]int, d.Len())
	for i := range dims {
		dims[i] = int(d.Index(i).Int())
	}
	return dims, true
}

// nodeInt reads a node's private parameters when they are a plain int (Concatenate's axis).
func nodeInt(node *simplego.Node) (int, bool) {
	v, ok := nodeData(node)
	if !ok || v.Kind() != reflect.Int {
		return 0, false
	}
	return int(v.Int()), true
}

// nodeData is the node's private parameters (the interface value in its data field).
func nodeData(node *simplego.Node) (reflect.Value, bool) {
	if nodeDataField < 0 {
		return reflect.Value{}, false
	}
	data := reflect.ValueOf(node).Elem().Field(nodeDataField)
	if data.Kind() != reflect.Interface || data.IsNil() {
		return reflect.Value{}, false
	}
	return data.Elem(), true
}

// nodeInts reads the []int fields of a SimpleGo node's private parameters by reflection
// (read-only access to unexported fields); ok is false if any is missing.
func nodeInts(node *simplego.Node, names ...string) (out [][]int, ok bool) {
	p, ok := nodeData(node)
	if !ok {
		return nil, false
	}
	if p.Kind() == reflect.Pointer {
		p = p.Elem()
	}
	if p.Kind() != reflect.Struct {
		return nil, false
	}
	for _, name := range names {
		v := p.FieldByName(name)
		if !v.IsValid() || v.Kind() != reflect.Slice || v.Type().Elem().Kind() != reflect.Int {
			return nil, false
		}
		ints := make([]int, v.Len())
		for i := range ints {
			ints[i] = int(v.Index(i).Int())
		}
		out = append(out, ints)
	}
	return out, true
}

// nodeIntSlice reads a node's private parameters when they are a plain []int (Transpose's
// permutation).
func nodeIntSlice(node *simplego.Node) ([]int, bool) {
	v, ok := nodeData(node)
	if !ok || v.Kind() != reflect.Slice || v.Type().Elem().Kind() != reflect.Int {
		return nil, false
	}
	out := make([]int, v.Len())
	for i := range out {
		out[i] = int(v.Index(i).Int())
	}
	return out, true
}
