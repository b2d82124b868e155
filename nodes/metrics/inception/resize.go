package inception

// tap is one output index of a 1-d linear resize: out = l0·in[i0] + l1·in[i1].
type tap struct {
	i0, i1 int
	l0, l1 float64
}

// resizeWeights returns PyTorch's bilinear (align_corners=False, no antialias) taps from
// in to out samples: source x = (i + 0.5)·in/out − 0.5, clamped below at 0, between
// floor(x) and the next sample (the last one repeated at the edge).
func resizeWeights(in, out int) []tap {
	taps := make([]tap, out)
	scale := float64(in) / float64(out)
	for i := range taps {
		x := max((float64(i)+0.5)*scale-0.5, 0)
		i0 := int(x)
		i1 := min(i0+1, in-1)
		l1 := x - float64(i0)
		taps[i] = tap{i0: i0, i1: i1, l0: 1 - l1, l1: l1}
	}
	return taps
}

// resize writes the separable bilinear resize of the h × w plane src into dst (len(ry) ×
// len(rx)), in float64.
func resize(dst, src []float32, h, w int, ry, rx []tap) {
	nx := len(rx)
	row := func(y int) []float32 { return src[y*w : (y+1)*w] }
	for i, ty := range ry {
		r0, r1 := row(ty.i0), row(ty.i1)
		for j, tx := range rx {
			top := tx.l0*float64(r0[tx.i0]) + tx.l1*float64(r0[tx.i1])
			bot := tx.l0*float64(r1[tx.i0]) + tx.l1*float64(r1[tx.i1])
			dst[i*nx+j] = float32(ty.l0*top + ty.l1*bot)
		}
	}
}
