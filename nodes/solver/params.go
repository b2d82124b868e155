package solver

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	num "github.com/dpsflow/dpsflow/internal/number"
)

// Param types.
const (
	Float  = "float"
	Int    = "int"
	Bool   = "bool"
	String = "string"
)

// Param declares one solver parameter.
type Param struct {
	Name    string
	Type    string // Float, Int, Bool or String
	Default any    // of Type (float64, int, bool, string)
	Doc     string // what it means, with units
	// Enum lists the valid values of a String parameter (empty: any string).
	Enum []string
	// Min bounds Float and Int parameters from below when MinSet (inclusive unless
	// MinExclusive); NaN and ±Inf are always refused for Float.
	Min          float64
	MinSet       bool
	MinExclusive bool
}

// Params are resolved parameter values: every declared name with a value of its type.
type Params map[string]any

// Float is the value of a Float parameter.
func (p Params) Float(name string) float64 { v, _ := p[name].(float64); return v }

// Int is the value of an Int parameter.
func (p Params) Int(name string) int { v, _ := p[name].(int); return v }

// Bool is the value of a Bool parameter.
func (p Params) Bool(name string) bool { v, _ := p[name].(bool); return v }

// String is the value of a String parameter.
func (p Params) String(name string) string { v, _ := p[name].(string); return v }

// ParamsValidator is implemented by solvers whose parameters constrain each other.
type ParamsValidator interface {
	ValidateParams(Params) error
}

// Resolve checks given against s's declared parameters and fills defaults. Values may be of
// the declared type, any Go number for numbers, or strings (as the CLI gives them) that parse
// as the type. Unknown names, wrong types and out-of-range values are errors naming the
// solver and the parameter.
func Resolve(s Solver, given map[string]any) (Params, error) {
	info := s.Info()
	who := "solver " + info.Name
	out := Params{}
	known := map[string]Param{}
	for _, p := range info.Params {
		known[p.Name] = p
		out[p.Name] = p.Default
	}
	var unknown []string
	for k := range given {
		if _, ok := known[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%s: unknown param %s (params: %s)", who, strings.Join(unknown, ", "), strings.Join(ParamNames(info), ", "))
	}
	for k, v := range given {
		p := known[k]
		val, err := convert(p, v)
		if err != nil {
			return nil, fmt.Errorf("%s: param %s: %w", who, k, err)
		}
		out[k] = val
	}
	for _, p := range info.Params {
		if err := checkRange(p, out[p.Name]); err != nil {
			return nil, fmt.Errorf("%s: param %s: %w", who, p.Name, err)
		}
	}
	if v, ok := s.(ParamsValidator); ok {
		if err := v.ValidateParams(out); err != nil {
			return nil, fmt.Errorf("%s: %w", who, err)
		}
	}
	return out, nil
}

// ParamNames are the declared parameter names of info, in declaration order.
func ParamNames(info Info) []string {
	names := make([]string, len(info.Params))
	for i, p := range info.Params {
		names[i] = p.Name
	}
	return names
}

// ParseAssignments reads "k=v" strings (the CLI's --param) into a map of string values for
// Resolve; a repeated key or a missing "=" is an error.
func ParseAssignments(assignments []string) (map[string]any, error) {
	out := map[string]any{}
	for _, a := range assignments {
		k, v, ok := strings.Cut(a, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want NAME=VALUE", a)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--param %s is given twice", k)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

func convert(p Param, v any) (any, error) {
	s, isString := v.(string)
	switch p.Type {
	case Float:
		if isString {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not a number", s)
			}
			return f, nil
		}
		if f, ok := number(v); ok {
			return f, nil
		}
	case Int:
		if isString {
			i, err := strconv.Atoi(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an integer", s)
			}
			return i, nil
		}
		if f, ok := number(v); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int(f), nil
		}
	case Bool:
		if isString {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not true or false", s)
			}
			return b, nil
		}
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case String:
		if isString {
			return s, nil
		}
	default:
		return nil, fmt.Errorf("declared with unknown type %q", p.Type)
	}
	return nil, fmt.Errorf("want %s, got %T %v", map[string]string{Float: "a number", Int: "an integer", Bool: "true or false", String: "a string"}[p.Type], v, v)
}

func checkRange(p Param, v any) error {
	switch p.Type {
	case Float, Int:
		f, _ := number(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%v is not a finite number", v)
		}
		if p.MinSet && (f < p.Min || (p.MinExclusive && f == p.Min)) {
			rel := "≥"
			if p.MinExclusive {
				rel = ">"
			}
			return fmt.Errorf("%v must be %s %v", v, rel, p.Min)
		}
	case String:
		if len(p.Enum) > 0 && !slices.Contains(p.Enum, v.(string)) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(p.Enum, ", "))
		}
	}
	return nil
}

func number(v any) (float64, bool) { return num.Float(v) }
