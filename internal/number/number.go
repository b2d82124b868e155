// Package number reads numbers from the untyped values that YAML and JSON decoders and Go
// callers hand over as `any` (parameter maps of operators, solvers and DAG nodes).
package number

import "reflect"

// Float returns v as a float64 when it is any Go integer or float type (NaN included).
func Float(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}
