// Package inception is pytorch-fid's FID Inception-v3 up to its 2048-d pool3 features, the
// features on which FID and KID (nodes/metrics/fid) are computed, run with GoMLX.
//
// The network is pytorch_fid/inception.py's fid_inception_v3 as InceptionV3 uses it for
// FID (output block 3): torchvision's Inception3 trunk Conv2d_1a_3x3 … Mixed_7c, with
// Mixed_5b–d as FIDInceptionA, Mixed_6b–e as FIDInceptionC (their 3×3 average pools leave
// the padded zeros out of the mean, count_include_pad=False, as TensorFlow's graph did),
// Mixed_7b as FIDInceptionE_1 (the same) and Mixed_7c as FIDInceptionE_2 (a 3×3 max pool in
// the pool branch), then adaptive average pooling to 1×1. Each BasicConv2d is a convolution
// without bias, BatchNorm in eval mode (eps 0.001) and ReLU; Load folds each BatchNorm into
// its convolution in float64 (w·γ/√(v+ε), β − m·γ/√(v+ε)), and the network runs in
// float32.
//
// Inputs are float32 NCHW images in [-1, 1] (dpsflow's convention, which is what
// pytorch-fid's normalize_input maps its [0, 1] images to, so that step is not repeated).
// Each image is resized on the host to 299 × 299 with PyTorch's bilinear interpolation
// (F.interpolate, align_corners=False, no antialiasing — also when shrinking, as
// pytorch-fid does), and a grey image is repeated to three channels.
//
// Weights are pytorch-fid's own file, pt_inception-2015-12-05-6726825d.pth (the 2015
// TensorFlow Inception ported to PyTorch), read as it is: keys like
// Conv2d_1a_3x3.conv.weight, Conv2d_1a_3x3.bn.{weight,bias,running_mean,running_var},
// Mixed_5b.branch1x1.conv.weight, …; fc.*, AuxLogits.* and num_batches_tracked are
// ignored. dpsflow does not ship the file.
//
// Cost: about 5.7 GFLOPs per image; on the embedded (pure Go) backend a 299 × 299 forward
// takes about 1.5–2 s per image on two shared cores, compilation included.
package inception
