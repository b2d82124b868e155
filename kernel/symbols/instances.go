package symbols

import (
	"reflect"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// addInstances exposes generic functions under their own names, instantiated for the
// types cells use: float64 scalars in graph ops (any untyped constant fits, and the
// op converts to the node's dtype) and float32 data in tensors (the dtype of DPS).
func addInstances() {
	g := Symbols["github.com/gomlx/gomlx/pkg/core/graph/graph"]
	g["MulScalar"] = reflect.ValueOf(graph.MulScalar[float64])
	g["DivScalar"] = reflect.ValueOf(graph.DivScalar[float64])
	g["AddScalar"] = reflect.ValueOf(graph.AddScalar[float64])
	g["SubScalar"] = reflect.ValueOf(graph.SubScalar[float64])
	g["PowScalar"] = reflect.ValueOf(graph.PowScalar[float64])
	g["ModScalar"] = reflect.ValueOf(graph.ModScalar[float64])
	g["MaxScalar"] = reflect.ValueOf(graph.MaxScalar[float64])
	g["MinScalar"] = reflect.ValueOf(graph.MinScalar[float64])
	g["Scalar"] = reflect.ValueOf(graph.Scalar[float64])

	t := Symbols["github.com/gomlx/gomlx/pkg/core/tensors/tensors"]
	t["FromFlatDataAndDimensions"] = reflect.ValueOf(tensors.FromFlatDataAndDimensions[float32])
	t["FromScalar"] = reflect.ValueOf(tensors.FromScalar[float32])
	t["FromScalarAndDimensions"] = reflect.ValueOf(tensors.FromScalarAndDimensions[float32])
	t["CopyFlatData"] = reflect.ValueOf(tensors.CopyFlatData[float32])
	t["MustCopyFlatData"] = reflect.ValueOf(tensors.MustCopyFlatData[float32])
	t["ToScalar"] = reflect.ValueOf(tensors.ToScalar[float32])
}
