package dag

import (
	"fmt"
	"math"
	"reflect"
	"sort"
)

// NormalizeParam converts a parameter value to the canonical Go type for its declared
// Param.Type: string, int, float64, bool, []string, []int, []float64, map[string]any, or
// (for "any") the value with integers as int, floats as float64, lists as []any and maps
// as map[string]any. It returns a copy and an error that says what was wrong.
func NormalizeParam(typ string, v any) (any, error) { return normalizeParam(typ, v) }

func normalizeParam(typ string, v any) (any, error) {
	if v == nil {
		if typ == "any" {
			return nil, nil
		}
		return nil, fmt.Errorf("null value, want %s", typ)
	}
	switch typ {
	case "string":
		if s, ok := v.(string); ok {
			return s, nil
		}
	case "int":
		if i, ok := toInt(v); ok {
			return i, nil
		}
		if isInteger(v) {
			return nil, fmt.Errorf("integer %v out of range", v)
		}
	case "float":
		if f, ok := toFloat(v); ok {
			return f, nil
		}
	case "bool":
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case "strings", "ints", "floats":
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			break
		}
		n := rv.Len()
		switch typ {
		case "strings":
			out := make([]string, n)
			for i := range n {
				s, ok := rv.Index(i).Interface().(string)
				if !ok {
					return nil, fmt.Errorf("element %d is %s, want string", i, describe(rv.Index(i).Interface()))
				}
				out[i] = s
			}
			return out, nil
		case "ints":
			out := make([]int, n)
			for i := range n {
				x, ok := toInt(rv.Index(i).Interface())
				if !ok {
					return nil, fmt.Errorf("element %d is %s, want int", i, describe(rv.Index(i).Interface()))
				}
				out[i] = x
			}
			return out, nil
		default:
			out := make([]float64, n)
			for i := range n {
				x, ok := toFloat(rv.Index(i).Interface())
				if !ok {
					return nil, fmt.Errorf("element %d is %s, want float", i, describe(rv.Index(i).Interface()))
				}
				out[i] = x
			}
			return out, nil
		}
	case "map":
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Map {
			break
		}
		m, err := normalizeMap(rv)
		if err != nil {
			return nil, err
		}
		return m, nil
	case "any":
		return normalizeAny(v)
	default:
		return nil, fmt.Errorf("unknown param type %q", typ)
	}
	return nil, fmt.Errorf("got %s, want %s", describe(v), typ)
}

func normalizeMap(rv reflect.Value) (map[string]any, error) {
	out := make(map[string]any, rv.Len())
	iter := rv.MapRange()
	for iter.Next() {
		k, ok := iter.Key().Interface().(string)
		if !ok {
			return nil, fmt.Errorf("map key %v is %s, want string", iter.Key().Interface(), describe(iter.Key().Interface()))
		}
		v, err := normalizeAny(iter.Value().Interface())
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func normalizeAny(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if i, ok := toInt(v); ok {
		return i, nil
	}
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case string, bool:
		return x, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		return normalizeMap(rv)
	case reflect.Slice, reflect.Array:
		if b, ok := v.([]byte); ok {
			return append([]byte(nil), b...), nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			e, err := normalizeAny(rv.Index(i).Interface())
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = e
		}
		return out, nil
	}
	// Other values (structs, pointers...) are kept as they are; they are hashed through
	// encoding/json when the node is cached.
	return v, nil
}

func isInteger(v any) bool {
	switch v.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr:
		return true
	}
	return false
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int8:
		return int(x), true
	case int16:
		return int(x), true
	case int32:
		return int(x), true
	case int64:
		if int64(int(x)) != x {
			return 0, false
		}
		return int(x), true
	case uint:
		if x > math.MaxInt {
			return 0, false
		}
		return int(x), true
	case uint8:
		return int(x), true
	case uint16:
		return int(x), true
	case uint32:
		if uint64(x) > math.MaxInt {
			return 0, false
		}
		return int(x), true
	case uint64:
		if x > math.MaxInt {
			return 0, false
		}
		return int(x), true
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	if isInteger(v) {
		rv := reflect.ValueOf(v)
		if rv.CanInt() {
			return float64(rv.Int()), true
		}
		return float64(rv.Uint()), true
	}
	return 0, false
}

// describe names a value's type for error messages in words a YAML author knows.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("bool %v", x)
	case float32, float64:
		return fmt.Sprintf("float %v", x)
	}
	if isInteger(v) {
		return fmt.Sprintf("int %v", v)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		return fmt.Sprintf("a list (%T)", v)
	case reflect.Map:
		return fmt.Sprintf("a map (%T)", v)
	}
	return fmt.Sprintf("a value of Go type %T", v)
}

// effectiveParams returns the node's parameters normalised, with defaults applied.
// It assumes the node passed validation (wrong values are skipped).
func effectiveParams(k *Kind, n *Node) map[string]any {
	out := make(map[string]any, len(k.Params))
	for _, p := range k.Params {
		raw, ok := n.Params[p.Name]
		if !ok {
			if p.Default != nil {
				if v, err := normalizeParam(p.Type, p.Default); err == nil {
					out[p.Name] = v // a copy: a node may not change the kind's default
				}
			}
			continue
		}
		v, err := normalizeParam(p.Type, raw)
		if err != nil {
			continue
		}
		out[p.Name] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
