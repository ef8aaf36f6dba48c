// Command etcd is etcd's own server entry point. The etcd root module cannot be
// installed from the module proxy (its go.mod has replace directives), so this
// module builds the server package at the version Kubernetes itself requires.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
