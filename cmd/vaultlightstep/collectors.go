package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// fleet is the collectors a rotation waits for: metrics URLs given
// outright, and DNS names resolved at every round (a pod that goes away
// sends nothing any more; one that comes reads the newest version at start).
type fleet struct {
	urls       []string // http(s)://host:port/metrics
	dns        []string // host:port, each A/AAAA record scraped
	metricPath string
	extension  string
	tenant     string

	lookup func(ctx context.Context, host string) ([]net.IPAddr, error)
	client *http.Client

	mu       sync.Mutex
	resolved map[string][]string // last good resolution of each DNS name
}

// status is what one collector said in one round.
type status struct {
	url     string
	version int
	err     error // the scrape failed or had no series: version unknown
}

func (s status) sends(version int) bool { return s.err == nil && s.version >= version }

// describe says where a lagging collector is, naming it and nothing secret.
func (s status) describe() string {
	if s.err != nil {
		return s.url + ": " + s.err.Error()
	}
	return fmt.Sprintf("%s still on %d", s.url, s.version)
}

// metricsURL normalizes a --collectors entry: a scheme and /metrics are
// added when left out; user info is refused (it would be printed).
func metricsURL(raw, defaultPath string) (string, error) {
	raw = strings.TrimSpace(raw)
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("collector %q: not a URL", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("collector %s: want an http or https URL", u.Redacted())
	}
	if u.Host == "" {
		return "", fmt.Errorf("collector %q: no host", raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("collector %s: no user info in URLs (they are printed)", u.Redacted())
	}
	if u.Path == "" {
		u.Path = defaultPath
	}
	return u.String(), nil
}

// targets lists the metrics URLs of this round; a DNS name that does not
// resolve now keeps its last resolution, or is a target that fails.
func (f *fleet) targets(ctx context.Context) ([]string, map[string]error) {
	out := slices.Clone(f.urls)
	failed := map[string]error{}
	for _, hostPort := range f.dns {
		host, port, _ := net.SplitHostPort(hostPort)
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err := f.lookup(lctx, host)
		cancel()
		f.mu.Lock()
		if err == nil && len(addrs) > 0 {
			var urls []string
			for _, a := range addrs {
				u := url.URL{Scheme: "http", Host: net.JoinHostPort(a.IP.String(), port), Path: f.metricPath}
				urls = append(urls, u.String())
			}
			slices.Sort(urls)
			f.resolved[hostPort] = slices.Compact(urls)
		}
		last, known := f.resolved[hostPort]
		f.mu.Unlock()
		if !known {
			if err == nil {
				err = errors.New("no A or AAAA records")
			}
			name := "dns:" + hostPort
			out = append(out, name)
			failed[name] = fmt.Errorf("resolve %s: %w", host, unwrapDNS(err))
			continue
		}
		out = append(out, last...)
	}
	slices.Sort(out)
	return slices.Compact(out), failed
}

func unwrapDNS(err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return errors.New(dnsErr.Err)
	}
	return err
}

// round scrapes every collector once, in parallel.
func (f *fleet) round(ctx context.Context, timeout time.Duration) []status {
	urls, failed := f.targets(ctx)
	out := make([]status, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		if err, ok := failed[u]; ok {
			out[i] = status{url: u, err: err}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			v, err := f.scrape(sctx, u)
			out[i] = status{url: u, version: v, err: err}
		}()
	}
	wg.Wait()
	return out
}

// scrape reads one collector's version of the secret.
func (f *fleet) scrape(ctx context.Context, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := f.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) { // "Get <url>: ..." repeats the URL we print anyway
			err = uerr.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = errors.New("scrape timed out")
		}
		return 0, fmt.Errorf("scrape failed: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return 0, fmt.Errorf("scrape failed: HTTP %s", resp.Status)
	}
	return secretVersion(io.LimitReader(resp.Body, 64<<20), f.extension, f.tenant)
}

// waitResult is how a wait ended.
type waitResult struct {
	ok       bool
	statuses []status // the last round
}

// waitFor scrapes the fleet every interval until every collector sends
// version (or a newer one), or until timeout, printing a progress line
// whenever the picture changes (and every 30s regardless).
func (f *fleet) waitFor(ctx context.Context, out io.Writer, version int, timeout, interval time.Duration) waitResult {
	deadline := time.Now().Add(timeout)
	var lastLine string
	var lastPrinted time.Time
	for {
		scrapeTimeout := 5 * time.Second
		if rem := time.Until(deadline); rem < scrapeTimeout {
			scrapeTimeout = max(rem, time.Second)
		}
		statuses := f.round(ctx, scrapeTimeout)
		if ctx.Err() != nil {
			return waitResult{statuses: statuses}
		}
		var lagging []status
		for _, s := range statuses {
			if !s.sends(version) {
				lagging = append(lagging, s)
			}
		}
		if len(lagging) == 0 && len(statuses) > 0 {
			_, _ = fmt.Fprintf(out, "all %d collectors send version %d: the old token can be deactivated\n", len(statuses), version)
			return waitResult{ok: true, statuses: statuses}
		}
		line := progressLine(len(statuses)-len(lagging), len(statuses), version, lagging)
		if line != lastLine || time.Since(lastPrinted) >= 30*time.Second {
			_, _ = fmt.Fprintln(out, line)
			lastLine, lastPrinted = line, time.Now()
		}
		if !time.Now().Before(deadline) {
			return waitResult{statuses: statuses}
		}
		select {
		case <-ctx.Done():
			return waitResult{statuses: statuses}
		case <-time.After(min(interval, max(time.Until(deadline), 0))):
		}
	}
}

// progressLine is e.g. "2/3 collectors send version 7: gw3:8888 still on 6".
func progressLine(done, total, version int, lagging []status) string {
	const shown = 5
	parts := make([]string, 0, shown+1)
	for i, s := range lagging {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more", len(lagging)-shown))
			break
		}
		parts = append(parts, s.describe())
	}
	return fmt.Sprintf("%d/%d collectors send version %d: %s", done, total, version, strings.Join(parts, ", "))
}

// reportLagging is the failure summary: every collector that does not send
// version, one a line.
func reportLagging(out io.Writer, res waitResult, version int, why string) {
	var lagging []status
	for _, s := range res.statuses {
		if !s.sends(version) {
			lagging = append(lagging, s)
		}
	}
	_, _ = fmt.Fprintf(out, "%s: %d/%d collectors send version %d; do NOT deactivate the old token. Lagging:\n",
		why, len(res.statuses)-len(lagging), len(res.statuses), version)
	if len(res.statuses) == 0 {
		_, _ = fmt.Fprintln(out, "  (no collector was found)")
	}
	for _, s := range lagging {
		_, _ = fmt.Fprintln(out, "  "+s.describe())
	}
}
