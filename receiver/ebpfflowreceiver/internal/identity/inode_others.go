//go:build !unix

package identity

import "io/fs"

func inode(fs.FileInfo) (uint64, bool) { return 0, false }
