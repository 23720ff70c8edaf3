package testbed

import (
	"os"
	"path/filepath"
	"strings"
)

// StandIn stands in for Lightstep: a collector whose OTLP receiver accepts
// only the access tokens listed in a file (contrib's bearertokenauth on
// header lightstep-access-token, as Lightstep checks it) and forwards to a Sink.
type StandIn struct {
	*Collector
	t          T
	tokensFile string
}

// StartStandIn starts the stand-in accepting tokens, forwarding to sink.
func StartStandIn(t T, sink *Sink, tokens ...string) *StandIn {
	t.Helper()
	s := &StandIn{t: t, tokensFile: filepath.Join(t.TempDir(), "accepted-tokens")}
	s.Accept(tokens...)
	s.Collector = StartCollector(t, "lightstep-standin", filepath.Join(RepoRoot(), "testdata", "lightstep-standin.yaml"),
		map[string]string{"ACCEPTED_TOKENS_FILE": s.tokensFile, "SINK_ENDPOINT": sink.GRPCAddr})
	return s
}

// Accept makes the stand-in accept exactly these tokens from now on (its
// bearertokenauth re-reads the file when it changes).
func (s *StandIn) Accept(tokens ...string) {
	if err := os.WriteFile(s.tokensFile, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
		s.t.Fatalf("stand-in tokens: %v", err)
	}
}
