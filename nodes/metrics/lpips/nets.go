package lpips

import (
	"fmt"
	"strconv"
)

// layerKind is one step of a backbone as lpips slices it.
type layerKind int

const (
	convLayer layerKind = iota // Conv2d followed by ReLU (every conv of these nets is)
	poolLayer                  // MaxPool2d
	fireLayer                  // SqueezeNet Fire module (its ReLUs included)
	tapLayer                   // the end of an lpips slice: the current features are compared
)

type layer struct {
	kind layerKind
	name string // state-dict prefix, e.g. "features.3"
	// conv: in → out channels, k×k kernel; pool: k×k window. stride and symmetric padding.
	in, out, k, stride, pad int
	ceil                    bool // pool: PyTorch's ceil_mode
	// fire: squeeze, expand1x1 and expand3x3 widths (in is the input width).
	squeeze, e1, e3 int
}

func feature(i int) string { return "features." + strconv.Itoa(i) }

func conv(i, in, out, k, stride, pad int) layer {
	return layer{kind: convLayer, name: feature(i), in: in, out: out, k: k, stride: stride, pad: pad}
}

func pool(k, stride int, ceil bool) layer {
	return layer{kind: poolLayer, k: k, stride: stride, ceil: ceil}
}

func fire(i, in, squeeze, e1, e3 int) layer {
	return layer{kind: fireLayer, name: feature(i), in: in, squeeze: squeeze, e1: e1, e3: e3, out: e1 + e3}
}

var tap = layer{kind: tapLayer}

// alexLayers is torchvision's alexnet().features up to index 11 (lpips' five slices end at
// the ReLUs 1, 4, 7, 9 and 11; the last max-pool is not used).
func alexLayers() []layer {
	return []layer{
		conv(0, 3, 64, 11, 4, 2), tap,
		pool(3, 2, false), conv(3, 64, 192, 5, 1, 2), tap,
		pool(3, 2, false), conv(6, 192, 384, 3, 1, 1), tap,
		conv(8, 384, 256, 3, 1, 1), tap,
		conv(10, 256, 256, 3, 1, 1), tap,
	}
}

// vggLayers is torchvision's vgg16().features up to index 29 (relu5_3): slices end at
// relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3.
func vggLayers() []layer {
	var ls []layer
	in, idx := 3, 0
	for b, block := range [][]int{{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}} {
		if b > 0 {
			ls = append(ls, pool(2, 2, false))
			idx++
		}
		for _, c := range block {
			ls = append(ls, conv(idx, in, c, 3, 1, 1))
			in = c
			idx += 2 // the conv and its ReLU
		}
		ls = append(ls, tap)
	}
	return ls
}

// squeezeLayers is torchvision's squeezenet1_1().features, sliced as lpips does: [0,2),
// [2,5), [5,8), [8,10), [10], [11], [12].
func squeezeLayers() []layer {
	return []layer{
		conv(0, 3, 64, 3, 2, 0), tap,
		pool(3, 2, true), fire(3, 64, 16, 64, 64), fire(4, 128, 16, 64, 64), tap,
		pool(3, 2, true), fire(6, 128, 32, 128, 128), fire(7, 256, 32, 128, 128), tap,
		pool(3, 2, true), fire(9, 256, 48, 192, 192), tap,
		fire(10, 384, 48, 192, 192), tap,
		fire(11, 384, 64, 256, 256), tap,
		fire(12, 512, 64, 256, 256), tap,
	}
}

// netLayers returns the backbone of an lpips net name.
func netLayers(net string) ([]layer, error) {
	switch net {
	case "alex":
		return alexLayers(), nil
	case "vgg":
		return vggLayers(), nil
	case "squeeze":
		return squeezeLayers(), nil
	}
	return nil, fmt.Errorf("lpips: unknown net %q (want one of %v)", net, Nets)
}

// backboneShapes lists the state-dict tensors a backbone needs, with their shapes.
func backboneShapes(ls []layer) map[string][]int {
	want := map[string][]int{}
	add := func(name string, out, in, k int) {
		want[name+".weight"] = []int{out, in, k, k}
		want[name+".bias"] = []int{out}
	}
	for _, l := range ls {
		switch l.kind {
		case convLayer:
			add(l.name, l.out, l.in, l.k)
		case fireLayer:
			add(l.name+".squeeze", l.squeeze, l.in, 1)
			add(l.name+".expand1x1", l.e1, l.squeeze, 1)
			add(l.name+".expand3x3", l.e3, l.squeeze, 3)
		}
	}
	return want
}

// tapChannels are the channel counts of the compared features (lpips' chns).
func tapChannels(ls []layer) []int {
	var chns []int
	c := 3
	for _, l := range ls {
		switch l.kind {
		case convLayer, fireLayer:
			c = l.out
		case tapLayer:
			chns = append(chns, c)
		}
	}
	return chns
}

// poolOut is PyTorch's MaxPool2d output size (no padding, so it may be < 1 for a too small
// input): ⌊(in − k)/s⌋ + 1, or in ceil mode ⌈(in − k)/s⌉ + 1 less one if the last window
// would start past the input.
func poolOut(in, k, s int, ceil bool) int {
	if !ceil {
		return floorDiv(in-k, s) + 1
	}
	out := floorDiv(in-k+s-1, s) + 1
	if (out-1)*s >= in {
		out--
	}
	return out
}

// floorDiv is ⌊a/b⌋ for b > 0 (Go's / truncates towards zero).
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// checkSize walks the spatial size h×w through the backbone and reports the first layer
// whose input is smaller than its window.
func checkSize(net string, ls []layer, h, w int) error {
	for _, l := range ls {
		for _, d := range []*int{&h, &w} {
			switch l.kind {
			case convLayer:
				if *d+2*l.pad < l.k {
					return fmt.Errorf("lpips: %s: images are too small: %s's %d×%d kernel does not fit its input", net, l.name, l.k, l.k)
				}
				*d = (*d+2*l.pad-l.k)/l.stride + 1
			case poolLayer:
				out := poolOut(*d, l.k, l.stride, l.ceil)
				if out < 1 {
					return fmt.Errorf("lpips: %s: images are too small: a %d×%d max-pool gets a %d-pixel side", net, l.k, l.k, *d)
				}
				*d = out
			}
		}
	}
	return nil
}
