package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// Exit codes (see doc.go).
const (
	exitSafe         = 0 // every collector sends the new version
	exitFailed       = 1 // nothing could be done (login, read, write, token input)
	exitUsage        = 2
	exitConflict     = 3 // nothing written: the secret changed, or another rotation wrote first
	exitNotConfirmed = 4 // written, but not every collector sends it before --timeout
)

// app is the command with its surroundings, so tests run it in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	lookup         func(ctx context.Context, host string) ([]net.IPAddr, error)
	// beforeWrite, when set, runs between reading the current version and
	// writing (tests use it to line two rotations up on the same version).
	beforeWrite func()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, lookup: net.DefaultResolver.LookupIPAddr}
	code := a.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

const usage = `vaultlightstep rotates the Lightstep access token held in Vault KV v2 and
says when every collector sends the new one.

Usage:
  vaultlightstep rotate --path secret/data/lightstep/prod --token-file FILE \
      --collectors http://gw1:8888/metrics,http://gw2:8888/metrics [flags]
  vaultlightstep wait --version N --collectors-dns gateway.otel.svc:8888 [flags]

Run "vaultlightstep rotate -h" or "vaultlightstep wait -h" for the flags.
`

func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		_, _ = fmt.Fprint(a.stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "rotate":
		return a.rotate(ctx, args[1:])
	case "wait":
		return a.wait(ctx, args[1:])
	case "help", "-h", "-help", "--help":
		_, _ = fmt.Fprint(a.stdout, usage)
		return exitSafe
	}
	_, _ = fmt.Fprintf(a.stderr, "unknown command %q\n\n%s", args[0], usage)
	return exitUsage
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

// rotateConfig is a parsed `rotate` command line.
type rotateConfig struct {
	path          kvPath
	key           string
	tokenFile     string
	tokenEnv      string
	expectVersion int // -1: not given
	vault         vaultclient.VaultConfig
	auth          vaultclient.AuthConfig
	fleetFlags    fleetFlags
	fleet         *fleet
}

// parseRotate parses rotate's flags; getenv is the environment (VAULT_TOKEN).
func (a *app) parseRotate(args []string) (*rotateConfig, error) {
	fs := flag.NewFlagSet("rotate", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	var (
		c                                      = &rotateConfig{expectVersion: -1}
		path, vaultAddr, vaultTokenFile        string
		roleIDFile, secretIDFile, approleMount string
	)
	fs.StringVar(&path, "path", "", "KV v2 data path of the token (secret/data/lightstep/prod; {tenant} is replaced by --tenant)")
	fs.StringVar(&c.key, "key", "access_token", "the key holding the token in the secret's data")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the new Lightstep token (default: read it from stdin)")
	fs.StringVar(&c.tokenEnv, "token-env", "", "name of an environment variable holding the new Lightstep token")
	fs.Func("expect-version", "refuse unless the secret's current version is N (0: the secret does not exist yet)", func(s string) error {
		n, err := parseNonNegative(s)
		c.expectVersion = n
		return err
	})
	fs.StringVar(&vaultAddr, "vault-addr", "", "Vault's address (default $VAULT_ADDR)")
	fs.StringVar(&vaultTokenFile, "vault-token-file", "", "file holding a Vault token (default $VAULT_TOKEN)")
	fs.StringVar(&roleIDFile, "approle-role-id-file", "", "AppRole login: file holding the role id")
	fs.StringVar(&secretIDFile, "approle-secret-id-file", "", "AppRole login: file holding the secret id")
	fs.StringVar(&secretIDFile, "secret-id-file", "", "same as --approle-secret-id-file")
	fs.StringVar(&approleMount, "approle-mount", "approle", "AppRole login: the auth method's mount path")
	c.fleetFlags.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (the token is never an argument: use --token-file, --token-env or stdin)", fs.Arg(0))
	}

	if strings.Contains(path, "{tenant}") {
		if c.fleetFlags.tenant == "" {
			return nil, fmt.Errorf("--path %s has {tenant}: --tenant is required", path)
		}
		if err := identity.ValidTenant(c.fleetFlags.tenant); err != nil {
			return nil, fmt.Errorf("--tenant: %w", err)
		}
		path = strings.ReplaceAll(path, "{tenant}", c.fleetFlags.tenant)
	}
	if path == "" {
		return nil, errors.New("--path: required (e.g. secret/data/lightstep/prod)")
	}
	var err error
	if c.path, err = parseKVPath(path); err != nil {
		return nil, err
	}
	if c.key == "" {
		return nil, errors.New("--key: required")
	}
	if c.tokenFile != "" && c.tokenEnv != "" {
		return nil, errors.New("--token-file and --token-env: give one")
	}

	c.vault = vaultclient.DefaultVaultConfig()
	c.vault.Address = vaultAddr
	if c.vault.Address == "" {
		c.vault.Address = a.getenv("VAULT_ADDR")
	}
	if c.vault.Address == "" {
		return nil, errors.New("no Vault address: set VAULT_ADDR or --vault-addr")
	}
	c.auth = vaultclient.DefaultAuthConfig()
	appRole := roleIDFile != "" || secretIDFile != ""
	switch {
	case appRole && vaultTokenFile != "":
		return nil, errors.New("--vault-token-file and --approle-*: log in one way")
	case appRole:
		if roleIDFile == "" || secretIDFile == "" {
			return nil, errors.New("AppRole login needs --approle-role-id-file and --approle-secret-id-file")
		}
		c.auth.Method, c.auth.MountPath = vaultclient.MethodAppRole, approleMount
		c.auth.RoleIDFile, c.auth.SecretIDFile = roleIDFile, secretIDFile
	case vaultTokenFile != "":
		c.auth.TokenFile = vaultTokenFile
	case a.getenv("VAULT_TOKEN") != "":
		c.auth.Token = configopaque.String(a.getenv("VAULT_TOKEN"))
	default:
		return nil, errors.New("no Vault login: set VAULT_TOKEN, or --vault-token-file, or --approle-role-id-file and --approle-secret-id-file")
	}

	if c.fleet, err = c.fleetFlags.fleet(a.lookup); err != nil {
		return nil, err
	}
	return c, nil
}

func parseNonNegative(s string) (int, error) {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil || n < 0 || fmt.Sprint(n) != strings.TrimSpace(s) {
		return 0, errors.New("want a version number (0 or more)")
	}
	return n, nil
}

// newToken reads the new Lightstep token from --token-file, --token-env or
// stdin. Errors name the source, never the content.
func (a *app) newToken(c *rotateConfig) (string, error) {
	var (
		raw    []byte
		source string
		err    error
	)
	switch {
	case c.tokenFile != "":
		source = c.tokenFile
		raw, err = os.ReadFile(c.tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
	case c.tokenEnv != "":
		source = "$" + c.tokenEnv
		raw = []byte(a.getenv(c.tokenEnv))
	default:
		source = "stdin"
		if f, ok := a.stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				return "", errors.New("no token: give --token-file or --token-env, or pipe the token on stdin (it is not read from a terminal, where it would show)")
			}
		}
		raw, err = io.ReadAll(io.LimitReader(a.stdin, 64<<10))
		if err != nil {
			return "", fmt.Errorf("stdin: %w", err)
		}
	}
	token := strings.TrimSpace(string(raw))
	switch {
	case token == "":
		return "", fmt.Errorf("the new token from %s is empty", source)
	case strings.ContainsAny(token, " \t\r\n"):
		return "", fmt.Errorf("the new token from %s holds whitespace or several lines: give the token alone", source)
	}
	return token, nil
}

func (a *app) rotate(ctx context.Context, args []string) int {
	c, err := a.parseRotate(args)
	if errors.Is(err, flag.ErrHelp) {
		return exitSafe
	}
	if err != nil {
		_, _ = fmt.Fprintln(a.stderr, "vaultlightstep rotate:", err)
		return exitUsage
	}
	token, err := a.newToken(c)
	if err != nil {
		_, _ = fmt.Fprintln(a.stderr, "vaultlightstep rotate:", err)
		return exitFailed
	}
	fail := func(err error) int {
		_, _ = fmt.Fprintln(a.stderr, "vaultlightstep rotate:", err)
		if errors.Is(err, errConflict) {
			return exitConflict
		}
		return exitFailed
	}

	client, err := vaultclient.NewClient(ctx, c.vault)
	if err != nil {
		return fail(err)
	}
	vaultToken, err := vaultclient.Login(ctx, client, c.auth)
	if err != nil {
		return fail(fmt.Errorf("login to Vault at %s: %s", client.Address(), oneLine(err)))
	}
	client.SetToken(vaultToken)
	if c.auth.Method == vaultclient.MethodAppRole {
		// The login's token is ours alone: revoke it when done.
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = client.Auth().Token().RevokeSelfWithContext(rctx, "")
		}()
	}

	// What the collectors send now, before anything changes: a wrong
	// --extension or --tenant shows here.
	before := c.fleet.round(ctx, 5*time.Second)
	_, _ = fmt.Fprintln(a.stdout, "before: "+summarize(before))

	current, err := currentVersion(ctx, client, c.path)
	if err != nil {
		return fail(err)
	}
	if c.expectVersion >= 0 && current != c.expectVersion {
		return fail(fmt.Errorf("%w: %s is at version %d, not %d as expected: the secret changed since you last looked; nothing written",
			errConflict, c.path.data, current, c.expectVersion))
	}
	if a.beforeWrite != nil {
		a.beforeWrite()
	}
	note := func(s string) { _, _ = fmt.Fprintln(a.stderr, "note: "+s) }
	written := time.Now()
	version, err := writeVersion(ctx, client, c.path, c.key, token, current, note)
	if err != nil {
		return fail(err)
	}
	_, _ = fmt.Fprintf(a.stdout, "wrote version %d of %s (key %s, check-and-set on version %d); waiting up to %s for the collectors\n",
		version, c.path.data, c.key, current, c.fleetFlags.timeout)

	res := c.fleet.waitFor(ctx, a.stdout, version, c.fleetFlags.timeout, c.fleetFlags.interval)
	if res.ok {
		_, _ = fmt.Fprintf(a.stderr, "(%s after the write)\n", time.Since(written).Round(100*time.Millisecond))
		return exitSafe
	}
	why := fmt.Sprintf("not confirmed after %s", c.fleetFlags.timeout)
	if ctx.Err() != nil {
		why = "interrupted"
	}
	reportLagging(a.stderr, res, version, "version "+fmt.Sprint(version)+" is written, but "+why)
	_, _ = fmt.Fprintf(a.stderr, "to keep waiting without writing again: vaultlightstep wait --version %d %s\n", version, c.fleetFlags.waitArgs())
	return exitNotConfirmed
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

// flagNames names the command's flags where vaultclient's errors name the
// extension's config keys.
var flagNames = strings.NewReplacer(
	"auth.token_file", "--vault-token-file",
	"auth.role_id_file", "--approle-role-id-file",
	"auth.secret_id_file", "--approle-secret-id-file",
)

// oneLine folds an error's text onto one line (api errors span several).
func oneLine(err error) string {
	return flagNames.Replace(strings.Join(strings.Fields(err.Error()), " "))
}
