// Package checkpoint reads and writes model weights as name → *tensors.Tensor maps.
//
// Two formats are supported:
//
//   - PyTorch torch.save files, read with ReadPyTorch, in both of torch.save's formats:
//     the zip archive of PyTorch ≥ 1.6 and the legacy (pre-1.6, non-zip) stream that
//     torch.save(..., _use_new_zipfile_serialization=False) still writes and in which most
//     published weights are stored (torchvision's alexnet-owt-7be5be79.pth and
//     vgg16-397923af.pth, pytorch-fid's pt_inception-2015-12-05-6726825d.pth, the lpips
//     package's weights/v0.1/*.pth, including Python 2 pickles and PyTorch 0.3's
//     _rebuild_tensor). Either holds a state dict, or a training checkpoint that nests one
//     under "state_dict", "model", "ema" or "params" (see StateDictKeys and
//     ReadPyTorchEntry). A leading "module." (nn.DataParallel / DDP) is stripped from every
//     name. float16 and bfloat16 tensors become float32; strided views are materialised
//     and tensors sharing a storage each get their own copy, by the same code for both
//     formats. The pickle is decoded with github.com/nlpodyssey/gopickle and never runs
//     code.
//   - safetensors files, read with ReadSafetensors and written (atomically) with
//     WriteSafetensors. F16 and BF16 are read as float32.
//
// Read picks the format from the file's content. CheckAgainst compares what was read with
// the shapes a model wants and names every missing, extra and mis-shaped tensor, so a
// model loader can refuse a checkpoint that would leave some weights at random values.
//
// All errors name the file and, where one is at fault, the tensor.
//
// The test fixtures in testdata/checkpoint (zip, legacy_*.pt in the legacy format, and
// safetensors) were written by testdata/checkpoint/make_fixtures.py with PyTorch 1.13
// (Debian python3-torch) and are committed; their expected values (expected.json) come from
// PyTorch, not from this package.
package checkpoint
