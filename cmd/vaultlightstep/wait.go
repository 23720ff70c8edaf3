package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// vaultlightstep wait: wait until every collector sends a version, and
// the fleet flags both commands share.

func (a *app) wait(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	var ff fleetFlags
	version := -1
	fs.Func("version", "the KV v2 version every collector must send (required)", func(s string) error {
		n, err := parseNonNegative(s)
		version = n
		return err
	})
	ff.register(fs)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return exitSafe
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err == nil && version < 1 {
		err = errors.New("--version: required (1 or more)")
	}
	var fl *fleet
	if err == nil {
		fl, err = ff.fleet(a.lookup)
	}
	if err != nil {
		_, _ = fmt.Fprintln(a.stderr, "vaultlightstep wait:", err)
		return exitUsage
	}
	res := fl.waitFor(ctx, a.stdout, version, ff.timeout, ff.interval)
	if res.ok {
		return exitSafe
	}
	why := fmt.Sprintf("not confirmed after %s", ff.timeout)
	if ctx.Err() != nil {
		why = "interrupted"
	}
	reportLagging(a.stderr, res, version, why)
	return exitNotConfirmed
}

// fleetFlags are the flags that say which collectors to wait for.
type fleetFlags struct {
	collectors, collectorsDNS string
	metricsPath               string
	extension, tenant         string
	timeout, interval         time.Duration
}

func (f *fleetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.collectors, "collectors", "", "comma-separated metrics URLs of the collectors (http://gw1:8888/metrics,...)")
	fs.StringVar(&f.collectorsDNS, "collectors-dns", "", "comma-separated host:port names whose A/AAAA records are the collectors (re-resolved at every round)")
	fs.StringVar(&f.metricsPath, "metrics-path", "/metrics", "metrics path for --collectors-dns and for --collectors URLs without a path")
	fs.StringVar(&f.extension, "extension", "vaultauth/lightstep", "the vaultauth extension whose version to wait for")
	fs.StringVar(&f.tenant, "tenant", "", "the tenant whose version to wait for (multi-tenant gateways); fills {tenant} in --path")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "how long to wait for every collector")
	fs.DurationVar(&f.interval, "interval", 2*time.Second, "how often to scrape the collectors")
}

func (f *fleetFlags) fleet(lookup func(context.Context, string) ([]net.IPAddr, error)) (*fleet, error) {
	fl := &fleet{
		metricPath: f.metricsPath, extension: f.extension, tenant: f.tenant, lookup: lookup,
		client: &http.Client{}, resolved: map[string][]string{},
	}
	if !strings.HasPrefix(fl.metricPath, "/") {
		fl.metricPath = "/" + fl.metricPath
	}
	for _, c := range splitList(f.collectors) {
		u, err := metricsURL(c, fl.metricPath)
		if err != nil {
			return nil, fmt.Errorf("--collectors: %w", err)
		}
		fl.urls = append(fl.urls, u)
	}
	for _, d := range splitList(f.collectorsDNS) {
		host, port, err := net.SplitHostPort(d)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("--collectors-dns %s: want host:port", d)
		}
		fl.dns = append(fl.dns, d)
	}
	switch {
	case len(fl.urls) == 0 && len(fl.dns) == 0:
		return nil, errors.New("--collectors or --collectors-dns is required: the rotation is safe only once every collector sends the new token")
	case f.extension == "":
		return nil, errors.New("--extension: required")
	case f.tenant != "" && identity.ValidTenant(f.tenant) != nil:
		return nil, fmt.Errorf("--tenant: %w", identity.ValidTenant(f.tenant))
	case f.timeout <= 0:
		return nil, errors.New("--timeout: must be positive")
	case f.interval <= 0:
		return nil, errors.New("--interval: must be positive")
	}
	return fl, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// waitArgs repeats the fleet flags for a `wait` command line.
func (f *fleetFlags) waitArgs() string {
	var parts []string
	if f.collectors != "" {
		parts = append(parts, "--collectors "+f.collectors)
	}
	if f.collectorsDNS != "" {
		parts = append(parts, "--collectors-dns "+f.collectorsDNS)
	}
	if f.extension != "vaultauth/lightstep" {
		parts = append(parts, "--extension "+f.extension)
	}
	if f.tenant != "" {
		parts = append(parts, "--tenant "+f.tenant)
	}
	return strings.Join(parts, " ")
}

// summarize is e.g. "3 collectors: version 6 on 3" or "..., 1 failing (...)".
func summarize(statuses []status) string {
	counts := map[int]int{}
	var versions []int
	var failing []string
	for _, s := range statuses {
		if s.err != nil {
			failing = append(failing, s.describe())
			continue
		}
		if counts[s.version] == 0 {
			versions = append(versions, s.version)
		}
		counts[s.version]++
	}
	var parts []string
	for _, v := range versions {
		parts = append(parts, fmt.Sprintf("version %d on %d", v, counts[v]))
	}
	out := fmt.Sprintf("%d collectors", len(statuses))
	if len(parts) > 0 {
		out += ": " + strings.Join(parts, ", ")
	}
	if len(failing) > 0 {
		out += fmt.Sprintf("; %d failing (%s)", len(failing), strings.Join(failing, ", "))
	}
	return out
}
