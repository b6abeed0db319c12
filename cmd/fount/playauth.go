package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/fount-live/fount/playlist/playauth"
	"github.com/fount-live/fount/storage"
)

// newPlayAuth sets up --play-auth (nil for none) and logs the choice.
func newPlayAuth(cfg config, log *slog.Logger) (*playauth.Auth, error) {
	switch cfg.PlayAuth {
	case "token":
		log.Info("play auth: signed URLs (token)")
		return playauth.NewToken([]byte(cfg.PlaySecret), nil)
	case "webhook":
		log.Info("play auth: webhook", "cache", cfg.PlayAuthCache)
		return playauth.NewWebhook(playauth.WebhookConfig{URL: cfg.PlayWebhookURL, Secret: []byte(cfg.PlaySecret),
			Cache: cfg.PlayAuthCache, Logger: log})
	}
	return nil, nil
}

var descPlayDenied = prometheus.NewDesc("fount_play_denied_total",
	"Viewer requests refused by --play-auth, by reason: missing_token, malformed_token, expired, bad_token (tampered, or another stream's), webhook_denied, webhook_unavailable.",
	[]string{"reason"}, nil)

// playAuthCollector exports what --play-auth refused.
type playAuthCollector struct{ auth *playauth.Auth }

func (c playAuthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descPlayDenied }

func (c playAuthCollector) Collect(ch chan<- prometheus.Metric) {
	for reason, n := range c.auth.Denied() {
		ch <- prometheus.MustNewConstMetric(descPlayDenied, prometheus.CounterValue, float64(n), reason)
	}
}

// newTokenCmd is `fount token APP/NAME`: a signed playback URL for
// --play-auth token.
func newTokenCmd() *cobra.Command {
	var (
		ttl    time.Duration
		secret string
		base   string
	)
	cmd := &cobra.Command{
		Use:   "token APP/NAME",
		Short: "Print a signed playback URL for --play-auth token",
		Long: `Print a signed playback URL of a stream for fount serve --play-auth token:
BASE/APP/NAME/index.m3u8?expires=UNIX&token=HEX, valid for --ttl. The token
covers every object of the stream (renditions, segments, parts, keys,
recordings). The secret is --play-secret or FOUNT_PLAY_SECRET, as for serve.
docs/play-auth.md shows how a site's backend makes the same URL.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("token takes one APP/NAME, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			stream := strings.Trim(args[0], "/")
			if strings.Count(stream, "/") != 1 || storage.ValidKey(stream) != nil {
				return usageError{fmt.Errorf("stream %q: want APP/NAME, e.g. live/show", args[0])}
			}
			if !c.Flags().Changed("play-secret") {
				secret = os.Getenv("FOUNT_PLAY_SECRET")
			}
			if secret == "" {
				return usageError{errors.New("no secret: set FOUNT_PLAY_SECRET (or --play-secret), the one fount serve has")}
			}
			if ttl <= 0 {
				return usageError{fmt.Errorf("--ttl %s: must be positive", ttl)}
			}
			u, err := url.Parse(base)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageError{fmt.Errorf("--base-url %q: want http(s)://host[:port]", base)}
			}
			s, err := playauth.NewSigner([]byte(secret))
			if err != nil {
				return usageError{err}
			}
			q := s.Query(stream, time.Now().Add(ttl))
			fmt.Fprintf(c.OutOrStdout(), "%s/%s/index.m3u8?%s\n", strings.TrimSuffix(base, "/"), stream, q)
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the URL stays valid")
	cmd.Flags().StringVar(&secret, "play-secret", "", "the secret fount serve has (prefer FOUNT_PLAY_SECRET)")
	cmd.Flags().StringVar(&base, "base-url", "http://localhost:8080", "where viewers reach fount (scheme, host, port)")
	return cmd
}
