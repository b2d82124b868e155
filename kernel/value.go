package kernel

import (
	"fmt"
	"image"
	"reflect"

	"github.com/dpsflow/dpsflow/kernel/display"
)

// noValue is the type yaegi returns for a part that has no value (an import, a
// declaration, a call of a function without results).
var noValue = reflect.TypeOf((*any)(nil))

// maxText bounds the text/plain form of a value; a huge tensor is cut, not sent whole.
const maxText = 100 << 10

// bundle is the MIME bundle showing a cell's value, or nil for no value.
func bundle(v reflect.Value) map[string]any {
	if !v.IsValid() || v.Type() == noValue {
		return nil
	}
	if !v.CanInterface() {
		return map[string]any{"text/plain": v.String()}
	}
	x := v.Interface()
	switch x := x.(type) {
	case display.MIME:
		return map[string]any(x)
	case image.Image:
		if isNil(v) {
			break
		}
		if m, err := display.ImageMIME(x); err == nil {
			return map[string]any(m)
		}
	case error:
		if !isNil(v) {
			return map[string]any{"text/plain": x.Error()}
		}
	}
	text := fmt.Sprintf("%v", x)
	if len(text) > maxText {
		text = text[:maxText] + fmt.Sprintf("\n… (%d more bytes)", len(text)-maxText)
	}
	return map[string]any{"text/plain": text}
}

func isNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}
