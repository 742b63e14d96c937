package watch

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// parseAbsoluteTime is OpenSSH's parse_absolute_time: YYYYMMDD,
// YYYYMMDDHHMM or YYYYMMDDHHMMSS, in UTC with a Z or UTC suffix and in loc
// otherwise. Out-of-range days and seconds roll over as in mktime(3)
// (June 31 is July 1). Only digits are accepted: glibc's strptime would
// also take blanks, which no one means.
func parseAbsoluteTime(s string, loc *time.Location) (uint64, error) {
	utc := false
	l := len(s)
	switch {
	case l > 1 && (s[l-1] == 'Z' || s[l-1] == 'z'):
		utc, l = true, l-1
	case l > 3 && strings.EqualFold(s[l-3:], "UTC"):
		utc, l = true, l-3
	}
	digits := s[:l]
	if l != 8 && l != 12 && l != 14 || strings.Trim(digits, "0123456789") != "" {
		return 0, errors.New("want YYYYMMDD[Z], YYYYMMDDHHMM[Z] or YYYYMMDDHHMMSS[Z]")
	}
	f := func(i, j int) int { n, _ := strconv.Atoi(digits[i:j]); return n }
	year, month, day := f(0, 4), f(4, 6), f(6, 8)
	var hour, minute, sec int
	if l >= 12 {
		hour, minute = f(8, 10), f(10, 12)
	}
	if l == 14 {
		sec = f(12, 14)
	}
	// strptime's ranges; 60 and 61 are its leap seconds.
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 61 {
		return 0, errors.New("a field is out of range")
	}
	var t time.Time
	if utc {
		t = time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	} else {
		t = standardTime(year, time.Month(month), day, hour, minute, sec, loc)
	}
	if t.Unix() <= 0 {
		return 0, errors.New("the time is not after 1970")
	}
	return uint64(t.Unix()), nil
}

// standardTime is mktime(3) with tm_isdst=0, as OpenSSH calls it: glibc
// reads the wall clock in the zone's standard time even when summer time
// is in force then, so 12:00 in Berlin in July is 11:00 UTC, not 10:00.
func standardTime(year int, month time.Month, day, hour, minute, sec int, loc *time.Location) time.Time {
	wall := time.Date(year, month, day, hour, minute, sec, 0, time.UTC)
	t := time.Date(year, month, day, hour, minute, sec, 0, loc)
	_, offset := t.Zone()
	if t.IsDST() {
		// The offset of the neighbouring time that is not summer time.
		start, end := t.ZoneBounds()
		for _, n := range []time.Time{start.Add(-time.Second), end} {
			if !n.IsZero() && !n.IsDST() {
				_, offset = n.Zone()
				break
			}
		}
	}
	return wall.Add(-time.Duration(offset) * time.Second)
}
