// Command fount-bench is a load tool for live HLS origins: many RTMP
// publishers replaying a recorded clip in real time, and many simulated
// HLS viewers that follow playlists like players do.
//
// It owns its RTMP publisher, its playlist follower and the latency
// histograms it reports. It drives an origin only from outside, over RTMP
// and HTTP as encoders and players do, so it measures fount or any other
// origin alike: of fount it imports only ingest/flv, to read the clip. It
// never starts an origin.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes: 2 for a bad command line, 1 for a failure at run time.
const (
	exitUsage = 2
	exitError = 1

	// maxCount bounds --streams and --viewers (in total): more is a typo,
	// not a load test this tool can drive from one machine.
	maxCount = 100000
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError marks errors in the command line itself.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "fount-bench:", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return exitUsage
	}
	return exitError
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "fount-bench",
		Short: "Load tool for live HLS origins: RTMP publishers and simulated HLS viewers",
		Long: `fount-bench drives a live origin (fount, nginx-rtmp, ...) with load:

  fount-bench publish   N RTMP publishers replaying an FLV clip in real time
  fount-bench view      M simulated HLS viewers per stream (classic or LL-HLS),
                        or M WebRTC viewers (--mode whep)

Both run for --duration, print a summary table and can write it as JSON
(--json). They talk to loopback addresses unless --allow-remote is given.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	root.AddCommand(newPublishCmd(), newViewCmd(), newGlassCmd())
	return root
}

// noArgs rejects positional arguments as a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", c.Name(), args)
	}
	return nil
}

// common holds the flags both commands share.
type common struct {
	duration    time.Duration
	ramp        time.Duration
	jsonPath    string
	allowRemote bool
	strict      bool
}

func (c *common) flags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.DurationVar(&c.duration, "duration", 60*time.Second, "how long the load runs (> 0), ramp included")
	fs.DurationVar(&c.ramp, "ramp", 5*time.Second, "spread the starts evenly over this long")
	fs.StringVar(&c.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	fs.BoolVar(&c.strict, "strict", false, "exit 1 if anything failed (errors, non-2xx, missed segments, dropped publishers)")
}

func (c *common) validate() error {
	var errs []error
	if c.duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration %s: must be > 0", c.duration))
	}
	if c.ramp < 0 || c.ramp >= c.duration && c.duration > 0 {
		errs = append(errs, fmt.Errorf("--ramp %s: must be >= 0 and shorter than --duration", c.ramp))
	}
	return errors.Join(errs...)
}

// checkHTTPURL checks an origin's HTTP base URL given in flag.
func checkHTTPURL(flag, raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", flag, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%s %q: want http://HOST[:PORT]", flag, raw)
	}
	return checkHost(flag, u, allowRemote)
}

// checkHost refuses non-loopback targets unless allowed: a load tool
// pointed at someone else's server by a typo is an attack.
func checkHost(flag string, u *url.URL, allowRemote bool) error {
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%s %q: no host", flag, u.String())
	}
	if allowRemote || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("%s %q: %s is not a loopback address; pass --allow-remote to load another machine", flag, u.String(), host)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// writeJSON writes v to path, if one was given.
func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	return nil
}

// startOffset spreads n starts evenly over ramp.
func startOffset(i, n int, ramp time.Duration) time.Duration {
	if n <= 1 {
		return 0
	}
	return time.Duration(int64(ramp) * int64(i) / int64(n))
}

// sleepCtx waits d or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ms renders a duration in milliseconds for tables.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000)
}
