// Command etcd is etcd v3.6.5's server, built here as the test control
// plane's store (make kube).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
