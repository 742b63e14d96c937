// Command tokenserver is the e2e's stand-in for the parts of Nexus and
// Harbor that CNCF distribution does not have: a Docker token service
// (distribution's `auth: token`), a path-prefix reverse proxy like Nexus's
// /repository/<name>/ layout, a web UI that answers HTML, and a TLS front.
// It uses the standard library only, so the e2e's module needs no go.sum.
//
//	tokenserver certs DIR
//	tokenserver token -addr A -key K -cert C -issuer I -service S -user U -password-file F
//	tokenserver nexus -addr A -upstream URL -repo NAME -group NAME
//	tokenserver ui    -addr A
//	tokenserver tls   -addr A -cert C -key K -upstream URL
//
// Every request is logged on stdout, one line each, with no secret.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetOutput(os.Stdout)
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "certs":
		if len(args) != 1 {
			usage()
		}
		err = writeCerts(args[0])
	case "token":
		err = runToken(args)
	case "nexus":
		err = runNexus(args)
	case "ui":
		err = runUI(args)
	case "tls":
		err = runTLS(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tokenserver %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tokenserver certs DIR | token | nexus | ui | tls [flags] (see the package comment)")
	os.Exit(2)
}

func flags(name string, args []string, def func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	def(fs)
	return fs.Parse(args)
}
