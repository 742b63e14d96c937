package engines

import (
	"fmt"
	"strconv"
	"strings"
)

// release is a containerd version; the zero value is "unknown".
type release struct {
	major, minor, patch int
	known               bool
}

// parseContainerdVersion picks the version out of `containerd --version`,
// which prints "containerd <module> <version> <revision>":
//
//	containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3 → 1.6.20
//	containerd github.com/containerd/containerd/v2 v2.4.2 <sha>                → 2.4.2
//	containerd containerd.io 1.7.27 05044ec0a9a7                               → 1.7.27
func parseContainerdVersion(out string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	f := strings.Fields(line)
	if len(f) >= 3 && f[0] == "containerd" {
		if r := parseRelease(f[2]); r.known {
			return r.String()
		}
	}
	return leadingVersion(line)
}

// parseRelease reads "1.6.20", "v2.4.2" or "2.1" with any suffix
// ("~ds1", "-k3s1", "+unknown") ignored.
func parseRelease(v string) release {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	var nums []int
	for part := range strings.SplitSeq(v, ".") {
		end := 0
		for end < len(part) && part[end] >= '0' && part[end] <= '9' {
			end++
		}
		n, err := strconv.Atoi(part[:end])
		if err != nil {
			break
		}
		nums = append(nums, n)
		if end < len(part) || len(nums) == 3 {
			break
		}
	}
	if len(nums) < 2 {
		return release{}
	}
	r := release{major: nums[0], minor: nums[1], known: true}
	if len(nums) == 3 {
		r.patch = nums[2]
	}
	return r
}

// atLeast reports whether r is known and not older than major.minor.patch.
func (r release) atLeast(major, minor, patch int) bool {
	if !r.known {
		return false
	}
	if r.major != major {
		return r.major > major
	}
	if r.minor != minor {
		return r.minor > minor
	}
	return r.patch >= patch
}

func (r release) String() string {
	if !r.known {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d.%d", r.major, r.minor, r.patch)
}
