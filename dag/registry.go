package dag

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Registry holds the node kinds and port types a graph may use. It is safe for
// concurrent use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]*Kind
	types map[string]Codec // nil value: memory-only
}

// BuiltinTypes are the port types every registry starts with. All have codecs except
// "any", which is memory-only.
var BuiltinTypes = []string{"string", "int", "float", "bool", "bytes", "strings", "floats", "any"}

// ParamTypes are the valid Param.Type values.
var ParamTypes = []string{"string", "int", "float", "bool", "strings", "ints", "floats", "map", "any"}

// NewRegistry returns a registry with the built-in port types "string", "int", "float",
// "bool", "bytes", "strings", "floats" and "any" (memory-only). Their Go types are
// string, int, float64, bool, []byte, []string, []float64 and anything.
func NewRegistry() *Registry {
	r := &Registry{kinds: map[string]*Kind{}, types: map[string]Codec{}}
	r.types["string"] = JSONCodec[string]{}
	r.types["int"] = intCodec{}
	r.types["float"] = float64Codec{}
	r.types["bool"] = JSONCodec[bool]{}
	r.types["bytes"] = bytesCodec{}
	r.types["strings"] = JSONCodec[[]string]{}
	r.types["floats"] = float64sCodec{}
	r.types["any"] = nil
	return r
}

// RegisterType adds a port type. c may be nil: values of the type are then memory-only
// and nodes that output them are never cached.
func (r *Registry) RegisterType(name string, c Codec) error {
	if name == "" {
		return errors.New("dag: RegisterType: empty type name")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.types[name]; dup {
		return fmt.Errorf("dag: RegisterType: type %q already registered", name)
	}
	r.types[name] = c
	return nil
}

// Type reports whether a port type is registered and returns its codec (nil for a
// memory-only type).
func (r *Registry) Type(name string) (Codec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.types[name]
	return c, ok
}

// Types returns the registered port type names, sorted.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.types))
	for n := range r.types {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Register adds a node kind. It is an error to register a name twice, to use an
// unregistered port type, to declare a port or param twice, to use an unknown param
// type, to give a default of the wrong type, or to leave Run nil.
func (r *Registry) Register(k Kind) error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if k.Name == "" {
		add("empty kind name")
	}
	if k.Run == nil {
		add("Run is nil")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.kinds[k.Name]; dup && k.Name != "" {
		add("kind already registered")
	}
	checkPorts := func(what string, ports []Port) {
		seen := map[string]bool{}
		for _, p := range ports {
			switch {
			case p.Name == "":
				add("%s with empty name", what)
			case strings.ContainsAny(p.Name, ". \t\n"):
				add("%s %q: name may not contain '.' or spaces", what, p.Name)
			case seen[p.Name]:
				add("%s %q declared twice", what, p.Name)
			}
			seen[p.Name] = true
			if _, ok := r.types[p.Type]; !ok {
				add("%s %q: unknown port type %q (registered: %s)", what, p.Name, p.Type, strings.Join(r.typesLocked(), ", "))
			}
		}
	}
	checkPorts("input", k.Inputs)
	checkPorts("output", k.Outputs)
	for _, p := range k.Outputs {
		if p.Optional {
			add("output %q: outputs cannot be optional", p.Name)
		}
	}
	// Work on copies so that the caller's slices are never changed.
	k.Inputs = append([]Port(nil), k.Inputs...)
	k.Outputs = append([]Port(nil), k.Outputs...)
	k.Params = append([]Param(nil), k.Params...)
	seen := map[string]bool{}
	for i, p := range k.Params {
		switch {
		case p.Name == "":
			add("param with empty name")
		case seen[p.Name]:
			add("param %q declared twice", p.Name)
		}
		seen[p.Name] = true
		if !validParamType(p.Type) {
			add("param %q: unknown param type %q (want one of %s)", p.Name, p.Type, strings.Join(ParamTypes, ", "))
			continue
		}
		if p.Default != nil {
			v, err := normalizeParam(p.Type, p.Default)
			if err != nil {
				add("param %q: default: %v", p.Name, err)
			} else {
				k.Params[i].Default = v
			}
		}
	}
	if len(errs) > 0 {
		name := k.Name
		if name == "" {
			name = "?"
		}
		return fmt.Errorf("dag: Register kind %q: %s", name, strings.Join(errs, "; "))
	}
	r.kinds[k.Name] = &k
	return nil
}

// MustRegister is Register that panics on error; for package initialisation.
func (r *Registry) MustRegister(k Kind) {
	if err := r.Register(k); err != nil {
		panic(err)
	}
}

// Kind returns the registered kind of that name. The result must not be modified.
func (r *Registry) Kind(name string) (*Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[name]
	return k, ok
}

// Kinds returns the registered kind names, sorted.
func (r *Registry) Kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (r *Registry) typesLocked() []string {
	out := make([]string, 0, len(r.types))
	for n := range r.types {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Compatible reports whether an output of type out may feed an input of type in: the
// same type, or an input of type "any".
func Compatible(out, in string) bool {
	return out == in || in == "any"
}

func validParamType(t string) bool {
	for _, p := range ParamTypes {
		if p == t {
			return true
		}
	}
	return false
}
