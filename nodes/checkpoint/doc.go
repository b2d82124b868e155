// Package checkpoint reads and writes model weights as name → *tensors.Tensor maps.
//
// Two formats are supported:
//
//   - PyTorch torch.save files (the zip format of PyTorch ≥ 1.6), read with ReadPyTorch:
//     a state dict, or a training checkpoint that nests one under "state_dict", "model",
//     "ema" or "params" (see StateDictKeys and ReadPyTorchEntry). A leading "module."
//     (nn.DataParallel / DDP) is stripped from every name. float16 and bfloat16 tensors
//     become float32; strided views are materialised. The pickle is decoded with
//     github.com/nlpodyssey/gopickle and never runs code.
//   - safetensors files, read with ReadSafetensors and written (atomically) with
//     WriteSafetensors. F16 and BF16 are read as float32.
//
// Read picks the format from the file's content. CheckAgainst compares what was read with
// the shapes a model wants and names every missing, extra and mis-shaped tensor, so a
// model loader can refuse a checkpoint that would leave some weights at random values.
//
// All errors name the file and, where one is at fault, the tensor.
//
// The test fixtures in testdata/checkpoint were written by
// testdata/checkpoint/make_fixtures.py with PyTorch 1.13 (Debian python3-torch); their
// expected values (expected.json) come from PyTorch, not from this package.
package checkpoint
