// Package lpips computes LPIPS v0.1, the Learned Perceptual Image Patch Similarity of Zhang
// et al. (CVPR 2018), exactly as the `lpips` Python package (richzhang/PerceptualSimilarity,
// lpips/lpips.py and lpips/pretrained_networks.py) does with
// lpips.LPIPS(net=..., version='0.1', lpips=True, spatial=False) in eval mode, for the
// backbones "alex" (AlexNet), "vgg" (VGG16) and "squeeze" (SqueezeNet 1.1).
//
// For images x₀, x₁ in [-1, 1] (NCHW; grey images are repeated to 3 channels):
//
//	x̃ = (x − shift) / scale                 ScalingLayer, shift (−.030, −.088, −.188),
//	                                          scale (.458, .448, .450) per RGB channel
//	f_k = F_k(x̃)                             backbone feature slice k (ReLU outputs):
//	                                          alex: after conv1..conv5 (5 slices);
//	                                          vgg: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3;
//	                                          squeeze: features[0:2], [2:5], [5:8], [8:10],
//	                                          [10], [11], [12] (Fire modules, ceil_mode pools)
//	f̂_k = f_k / (‖f_k‖₂ over channels + 1e-10)   normalize_tensor, per pixel
//	LPIPS = Σ_k mean_{h,w} Σ_c w_{k,c} (f̂₀_k − f̂₁_k)²_{c,h,w}
//
// with w_k the non-negative 1×1 "lin" layers (no bias) learned on human judgements. The
// result is dimensionless, 0 for identical images, larger for less similar ones (typically
// below 1).
//
// Weights are read from the user's files, as distributed: the torchvision state dict of the
// backbone (alexnet-owt-7be5be79.pth, vgg16-397923af.pth, squeezenet1_1-b8a52dc0.pth;
// features.N.weight/bias, Fire modules as features.N.{squeeze,expand1x1,expand3x3}.*; the
// classifier is ignored) and the lpips package's weights/v0.1/{alex,vgg,squeeze}.pth
// (linK.model.1.weight, [1, C_K, 1, 1]). Both are read with checkpoint.Read, so both
// PyTorch formats work: the zip format (PyTorch ≥ 1.6) and the legacy one that the lpips
// weights (Python 2 pickles) and torchvision's downloads use; safetensors files with the
// same tensor names work too. A missing or mis-shaped tensor is an error naming the file and
// the tensor.
//
// The network runs as a GoMLX graph on the backend the caller gives, in float32, compiled once
// per image shape; it agrees with PyTorch to about 1e-6 relative. Images must be large enough
// for the backbone's strides and pools (the same limits as PyTorch: at least 31×31 for alex,
// 16×16 for vgg, 17×17 for squeeze; MNIST's 32×32 works for all three).
package lpips
