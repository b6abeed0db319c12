package ingest

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/sirupsen/logrus"
)

// newLogBridge gives go-rtmp a logrus logger whose warnings and errors go to
// our slog logger as one line each (go-rtmp prints error stacks with %+v),
// and whose chatter is dropped.
func newLogBridge(log *slog.Logger, c *counters) logrus.FieldLogger {
	l := logrus.New()
	l.Out = io.Discard
	l.Level = logrus.WarnLevel
	l.AddHook(logHook{log, c})
	return l
}

type logHook struct {
	log *slog.Logger
	c   *counters
}

func (logHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (h logHook) Fire(e *logrus.Entry) error {
	msg, _, _ := strings.Cut(e.Message, "\n")
	if strings.HasSuffix(msg, ": EOF") || strings.Contains(msg, "use of closed network connection") ||
		strings.Contains(msg, errHandshakeTimeout) || strings.Contains(msg, errRecoveredPanic) {
		// A peer hanging up or our own shutdown is not worth a warning;
		// handshake timeouts and panics are logged where they happen.
		h.log.Debug("rtmp: " + msg)
		return nil
	}
	if strings.HasPrefix(msg, "Server closed by error") && !strings.Contains(msg, "no data from the peer") {
		h.c.protocolErrors.Add(1)
	}
	h.log.Log(context.Background(), slog.LevelWarn, "rtmp: "+msg)
	return nil
}
