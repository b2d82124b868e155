package dag

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
)

// Codec serialises values of a port type for the on-disk cache. A type registered with a
// nil Codec is memory-only: a node with such an output (or fed by a node whose output
// could not be hashed) is never cached on disk and always runs.
type Codec interface {
	Encode(w io.Writer, v any) error
	Decode(r io.Reader) (any, error)
}

// ValueChecker may be implemented by a Codec to reject, when a node sets an output,
// values of the wrong Go type (before anything is written to the cache). JSONCodec and
// the built-in codecs implement it.
type ValueChecker interface {
	CheckValue(v any) error
}

// JSONCodec[T] encodes a T with encoding/json (Decode returns a T, not a pointer).
type JSONCodec[T any] struct{}

// Encode writes v, which must be a T, as JSON.
func (JSONCodec[T]) Encode(w io.Writer, v any) error {
	t, ok := v.(T)
	if !ok {
		return fmt.Errorf("JSONCodec[%s]: got a value of type %T", typeName[T](), v)
	}
	return json.NewEncoder(w).Encode(t)
}

// Decode reads a T written by Encode.
func (JSONCodec[T]) Decode(r io.Reader) (any, error) {
	var t T
	if err := json.NewDecoder(r).Decode(&t); err != nil {
		return nil, fmt.Errorf("JSONCodec[%s]: %w", typeName[T](), err)
	}
	return t, nil
}

// CheckValue reports whether v is a T.
func (JSONCodec[T]) CheckValue(v any) error {
	if _, ok := v.(T); !ok {
		return fmt.Errorf("value of Go type %T, want %s", v, typeName[T]())
	}
	return nil
}

func typeName[T any]() string {
	return reflect.TypeOf((*T)(nil)).Elem().String()
}

// Port is a named, typed input or output of a Kind.
type Port struct {
	Name, Type, Doc string
	Optional        bool // an input that may be left unconnected
}

// Param declares a node parameter. Type is one of "string", "int", "float", "bool",
// "strings", "ints", "floats", "map", "any". YAML ints are accepted for "float".
type Param struct {
	Name, Type, Doc string
	Default         any // used when the parameter is absent (nil and !Required: absent stays absent)
	Required        bool
}

// Kind is a kind of node: its ports, parameters and the function that runs it.
type Kind struct {
	Name, Version, Doc string // Version is part of the cache key: bump it when behaviour changes
	// CodeVersion, when set, joins the cache key too: a digest of the code Run depends
	// on, so that a fix in that code makes cached results stale without anyone bumping
	// Version. Whoever registers the kind sets it, typically to
	// codever.Of("nodes/sampler", ...) (internal/codever); dag only compares it. Kinds
	// without it keep the keys they had before it existed.
	CodeVersion     string
	Inputs, Outputs []Port
	Params          []Param
	NoCache         bool // always run (side effects such as writing files); never cached
	// Fingerprint, for a node that reads state outside the graph (files), is a digest of
	// that state given the node's parameters (defaults applied). It joins the cache key,
	// so the node is cached until what it reads changes, and Explain can tell without
	// running the node. An error makes the node run (and report it).
	Fingerprint func(params map[string]any) (string, error)
	// Check, when set, checks the node's parameters (defaults applied) beyond their types:
	// ranges, names, files. Validate calls it, so that 'dag explain' and 'dag run' refuse a
	// bad value before anything runs; return a *ParamError to name the parameter.
	Check func(params map[string]any) error
	Run   func(c *Call) error
}

func (k *Kind) input(name string) *Port {
	for i := range k.Inputs {
		if k.Inputs[i].Name == name {
			return &k.Inputs[i]
		}
	}
	return nil
}

func (k *Kind) output(name string) *Port {
	for i := range k.Outputs {
		if k.Outputs[i].Name == name {
			return &k.Outputs[i]
		}
	}
	return nil
}

func (k *Kind) param(name string) *Param {
	for i := range k.Params {
		if k.Params[i].Name == name {
			return &k.Params[i]
		}
	}
	return nil
}

// ---- built-in codecs ----

// float64Codec stores a float64 as 8 little-endian bytes (exact, NaN and Inf included).
type float64Codec struct{}

func (float64Codec) Encode(w io.Writer, v any) error {
	f, ok := v.(float64)
	if !ok {
		return fmt.Errorf("float codec: got a value of type %T", v)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], math.Float64bits(f))
	_, err := w.Write(b[:])
	return err
}

func (float64Codec) Decode(r io.Reader) (any, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("float codec: %w", err)
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b[:])), nil
}

func (float64Codec) CheckValue(v any) error {
	if _, ok := v.(float64); !ok {
		return fmt.Errorf("value of Go type %T, want float64", v)
	}
	return nil
}

// float64sCodec stores a []float64 as 8 little-endian bytes per element.
type float64sCodec struct{}

func (float64sCodec) Encode(w io.Writer, v any) error {
	fs, ok := v.([]float64)
	if !ok {
		return fmt.Errorf("floats codec: got a value of type %T", v)
	}
	buf := make([]byte, 8*len(fs))
	for i, f := range fs {
		binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(f))
	}
	_, err := w.Write(buf)
	return err
}

func (float64sCodec) Decode(r io.Reader) (any, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("floats codec: %w", err)
	}
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("floats codec: %d bytes is not a multiple of 8", len(b))
	}
	fs := make([]float64, len(b)/8)
	for i := range fs {
		fs[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return fs, nil
}

func (float64sCodec) CheckValue(v any) error {
	if _, ok := v.([]float64); !ok {
		return fmt.Errorf("value of Go type %T, want []float64", v)
	}
	return nil
}

// bytesCodec stores a []byte as is.
type bytesCodec struct{}

func (bytesCodec) Encode(w io.Writer, v any) error {
	b, ok := v.([]byte)
	if !ok {
		return fmt.Errorf("bytes codec: got a value of type %T", v)
	}
	_, err := w.Write(b)
	return err
}

func (bytesCodec) Decode(r io.Reader) (any, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("bytes codec: %w", err)
	}
	return buf.Bytes(), nil
}

func (bytesCodec) CheckValue(v any) error {
	if _, ok := v.([]byte); !ok {
		return fmt.Errorf("value of Go type %T, want []byte", v)
	}
	return nil
}

// intCodec stores an int as decimal text.
type intCodec struct{}

func (intCodec) Encode(w io.Writer, v any) error {
	i, ok := v.(int)
	if !ok {
		return fmt.Errorf("int codec: got a value of type %T", v)
	}
	_, err := io.WriteString(w, strconv.Itoa(i))
	return err
}

func (intCodec) Decode(r io.Reader) (any, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("int codec: %w", err)
	}
	i, err := strconv.Atoi(string(b))
	if err != nil {
		return nil, fmt.Errorf("int codec: %w", err)
	}
	return i, nil
}

func (intCodec) CheckValue(v any) error {
	if _, ok := v.(int); !ok {
		return fmt.Errorf("value of Go type %T, want int", v)
	}
	return nil
}
