package storage

import "testing"

// TestValidPathNoAllocs backs validPath's "without allocating: it runs on
// every viewer request" and foldEq's "without allocating", for names that
// pass and names that fail, Windows device names (foldEq) among both.
// (ValidName and ValidKey allocate their error when they refuse.)
func TestValidPathNoAllocs(t *testing.T) {
	for _, c := range []struct {
		s       string
		slashes bool
		ok      bool
	}{
		{"live/my-show_1/seg123456.7.m4s", true, true},
		{"live/Console/index.m3u8", true, true},
		{"live/com10/lpt.ts", true, true},
		{"live/CON/index.m3u8", true, false},
		{"live/show/Lpt9.m4s", true, false},
		{"nul", false, false},
		{"com1.ts", false, false},
		{"live/../etc", true, false},
		{".hidden", false, false},
	} {
		if got := validPath(c.s, c.slashes); got != c.ok {
			t.Fatalf("validPath(%q) = %v", c.s, got)
		}
		var ok bool
		if n := testing.AllocsPerRun(100, func() { ok = validPath(c.s, c.slashes) }); n != 0 || ok != c.ok {
			t.Errorf("validPath(%q): %v allocations", c.s, n)
		}
	}
}
