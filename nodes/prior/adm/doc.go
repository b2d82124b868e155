// Package adm is the guided-diffusion ("ADM") UNet that DPS uses as its prior, configured
// by the keys of the reference model_config.yaml and named so that reference PyTorch
// checkpoints (ffhq_10m.pt, imagenet256.pt) load tensor for tensor.
//
// The layout follows guided-diffusion's UNetModel: sinusoidal timestep embedding (cosines
// first, integer t), time_embed MLP, input blocks of res-blocks (scale-shift norm,
// res-block up/down sampling or strided-conv/upsample-conv resampling) with attention at
// the configured feature-map sizes, a middle block, mirrored output blocks taking the
// skip connections, and GroupNorm-SiLU-conv out; learn_sigma models output ε and v.
// GroupNorm has 32 groups and eps 1e-5; attention follows the legacy (heads first) or new
// q/k/v order.
//
// Weights live in a GoMLX context under the state-dict names. use_fp16 checkpoints are
// run in float32. Dropout is not applied (inference, and our training config has none).
// class_cond models are refused.
package adm
