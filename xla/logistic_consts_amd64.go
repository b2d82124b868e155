package xla

// logisticConsts are the constants of logistic_amd64.s, in the order it reads them.
var logisticConsts = [...]uint64{
	0x8000000000000000, // neg zero
	0xc05e000000000000, // -120
	0x3ff71547652b82fe, // log2e
	0x3fe62e42fee00000, // ln2hi
	0x3dea39ef35793c76, // ln2lo
	0x3ff0000000000000, // one
	0x00000000000003ff, // bias
	0x3de6124613a86d09, // 1/13!
	0x3e21eed8eff8d898, // 1/12!
	0x3e5ae64567f544e4, // 1/11!
	0x3e927e4fb7789f5c, // 1/10!
	0x3ec71de3a556c734, // 1/9!
	0x3efa01a01a01a01a, // 1/8!
	0x3f2a01a01a01a01a, // 1/7!
	0x3f56c16c16c16c17, // 1/6!
	0x3f81111111111111, // 1/5!
	0x3fa5555555555555, // 1/4!
	0x3fc5555555555555, // 1/3!
	0x3fe0000000000000, // 1/2!
}
