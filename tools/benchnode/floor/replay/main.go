// Command replay is the bench's floor for a no-op sync that does not plan:
// it checks a record of every file a no-op read and every directory it
// listed against what is there now, by attributes or by content, and
// exits 1 naming the first entry that changed. It is what any design that
// skips planning when nothing changed must at least do.
//
//	replay stat|content RECORD
package main

import (
	"fmt"
	"os"

	"github.com/mirrorctl/mirrorctl/tools/benchnode/replay"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: replay stat|content RECORD")
		os.Exit(2)
	}
	if err := replay.CheckFile(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}
