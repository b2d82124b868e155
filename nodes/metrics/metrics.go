package metrics

import (
	"fmt"
	"math"
)

// SSIM constants, as in Wang et al. (2004) and scikit-image.
const (
	ssimK1       = 0.01
	ssimK2       = 0.03
	ssimSigma    = 1.5
	ssimTruncate = 3.5
)

// ssimRadius is scipy.ndimage's Gaussian radius int(truncate·σ + 0.5) = int(5.75) = 5
// (a test checks the arithmetic).
const ssimRadius = 5

// SSIMWindow is the side of SSIM's Gaussian window, 2·5+1 = 11 pixels; SSIM rejects
// images smaller than that.
const SSIMWindow = 2*ssimRadius + 1

// PSNR is the peak signal-to-noise ratio of est against truth in decibels,
// 10·log10(dataRange²/MSE), over all the given values with no clipping. It is +Inf when
// the images are identical and NaN when their lengths differ or they are empty. For images
// in [-1, 1], dataRange is 2.
func PSNR(est, truth []float32, dataRange float64) float64 {
	if len(est) != len(truth) || len(est) == 0 {
		return math.NaN()
	}
	var sum float64
	for i := range est {
		d := float64(est[i]) - float64(truth[i])
		sum += d * d
	}
	mse := sum / float64(len(est))
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(dataRange*dataRange/mse)
}

// SSIM is the mean structural similarity of one CHW image est against truth, averaged
// over channels. It matches scikit-image's
//
//	structural_similarity(truth, est, gaussian_weights=True, sigma=1.5,
//	    use_sample_covariance=False, data_range=dataRange, channel_axis=0)
//
// (for c = 1, the 2-D call without channel_axis) evaluated in float64: local statistics
// are weighted by a normalised Gaussian (σ = 1.5, truncated at 3.5σ: radius 5), borders
// are extended by half-sample reflection (scipy.ndimage mode "reflect"), K1 = 0.01,
// K2 = 0.03, population covariances, and the SSIM map is averaged after cropping 5 pixels
// from every side. SSIM is symmetric in its two images.
//
// It returns an error when the lengths differ from c·h·w, a dimension is not positive, or
// h or w is smaller than the 11-pixel window.
func SSIM(est, truth []float32, c, h, w int, dataRange float64) (float64, error) {
	if c <= 0 || h <= 0 || w <= 0 {
		return 0, fmt.Errorf("metrics: SSIM: image shape [%d, %d, %d] is not positive", c, h, w)
	}
	n := c * h * w
	if len(est) != n || len(truth) != n {
		return 0, fmt.Errorf("metrics: SSIM: image shape [%d, %d, %d] needs %d values; estimate has %d, truth has %d",
			c, h, w, n, len(est), len(truth))
	}
	if h < SSIMWindow || w < SSIMWindow {
		return 0, fmt.Errorf("metrics: SSIM: image %d×%d is smaller than the %d×%d Gaussian window",
			h, w, SSIMWindow, SSIMWindow)
	}
	if !(dataRange > 0) || math.IsInf(dataRange, 0) {
		return 0, fmt.Errorf("metrics: SSIM: data range %v is not a positive number", dataRange)
	}
	kernel := gaussianKernel(ssimSigma, ssimRadius)
	var total float64
	for ch := range c {
		x := toFloat64(truth[ch*h*w : (ch+1)*h*w])
		y := toFloat64(est[ch*h*w : (ch+1)*h*w])
		total += ssimChannel(x, y, h, w, dataRange, kernel)
	}
	return total / float64(c), nil
}

// ssimChannel follows skimage.metrics.structural_similarity for one 2-D image.
func ssimChannel(x, y []float64, h, w int, dataRange float64, kernel []float64) float64 {
	n := h * w
	xx, yy, xy := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		xx[i], yy[i], xy[i] = x[i]*x[i], y[i]*y[i], x[i]*y[i]
	}
	ux := gaussianFilter(x, h, w, kernel)
	uy := gaussianFilter(y, h, w, kernel)
	uxx := gaussianFilter(xx, h, w, kernel)
	uyy := gaussianFilter(yy, h, w, kernel)
	uxy := gaussianFilter(xy, h, w, kernel)
	c1 := (ssimK1 * dataRange) * (ssimK1 * dataRange)
	c2 := (ssimK2 * dataRange) * (ssimK2 * dataRange)
	pad := (SSIMWindow - 1) / 2
	var sum float64
	for r := pad; r < h-pad; r++ {
		for q := pad; q < w-pad; q++ {
			i := r*w + q
			vx := uxx[i] - ux[i]*ux[i]
			vy := uyy[i] - uy[i]*uy[i]
			vxy := uxy[i] - ux[i]*uy[i]
			a1 := 2*ux[i]*uy[i] + c1
			a2 := 2*vxy + c2
			b1 := ux[i]*ux[i] + uy[i]*uy[i] + c1
			b2 := vx + vy + c2
			sum += (a1 * a2) / (b1 * b2)
		}
	}
	return sum / float64((h-2*pad)*(w-2*pad))
}

// gaussianKernel is scipy.ndimage's 1-D Gaussian: exp(−x²/2σ²) for x in [−r, r],
// normalised to sum 1.
func gaussianKernel(sigma float64, radius int) []float64 {
	k := make([]float64, 2*radius+1)
	var sum float64
	for i := range k {
		x := float64(i - radius)
		k[i] = math.Exp(-0.5 / (sigma * sigma) * x * x)
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	return k
}

// gaussianFilter applies the separable kernel along rows (axis 0) and then columns
// (axis 1), as scipy.ndimage.gaussian_filter does, with mode "reflect".
func gaussianFilter(in []float64, h, w int, kernel []float64) []float64 {
	r := len(kernel) / 2
	tmp := make([]float64, h*w)
	for i := range h {
		for j := range w {
			var s float64
			for k, kv := range kernel {
				s += kv * in[reflect(i+k-r, h)*w+j]
			}
			tmp[i*w+j] = s
		}
	}
	out := make([]float64, h*w)
	for i := range h {
		row := tmp[i*w : (i+1)*w]
		for j := range w {
			var s float64
			for k, kv := range kernel {
				s += kv * row[reflect(j+k-r, w)]
			}
			out[i*w+j] = s
		}
	}
	return out
}

// reflect maps an index outside [0, n) by half-sample symmetric extension
// (d c b a | a b c d | d c b a), scipy.ndimage's "reflect" mode.
func reflect(i, n int) int {
	period := 2 * n
	i %= period
	if i < 0 {
		i += period
	}
	if i >= n {
		i = period - 1 - i
	}
	return i
}

func toFloat64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// Residual is the measurement residual ‖y − A(x)‖₂: the plain Euclidean norm of the
// difference between the measurement y and the re-measured estimate ay, neither squared
// nor averaged. It is NaN when the lengths differ.
func Residual(y, ay []float32) float64 {
	if len(y) != len(ay) {
		return math.NaN()
	}
	var sum float64
	for i := range y {
		d := float64(y[i]) - float64(ay[i])
		sum += d * d
	}
	return math.Sqrt(sum)
}

// MeanStd summarises a metric over a batch or a sweep: the mean and the population
// standard deviation sqrt(Σ(x−mean)²/n) (divided by n, not n−1, as numpy.std's default).
// An empty slice gives NaN, NaN; a single value gives std 0.
func MeanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	var ss float64
	for _, x := range xs {
		d := x - mean
		ss += d * d
	}
	return mean, math.Sqrt(ss / float64(len(xs)))
}
