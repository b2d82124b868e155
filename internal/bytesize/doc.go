// Package bytesize reads and writes sizes in bytes the way du and ls print them: 2GiB,
// 500MiB, 1.5G, 10kB. Used for the cache's --max-size and the kernel's --max-memory.
package bytesize
