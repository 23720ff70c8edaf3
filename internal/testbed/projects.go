package testbed

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
)

// Projects stands in for Lightstep with several projects behind one
// endpoint, as Lightstep routes by access token: a real OTLP receiver whose
// authenticator maps the lightstep-access-token header to the one project
// that token belongs to, and refuses any other (Unauthenticated, which an
// exporter does not retry). It records, for every span, the project it
// landed in and its attributes.
type Projects struct {
	GRPCAddr string
	HTTPAddr string // http://host:port

	mu       sync.Mutex
	accepted map[string]string        // token -> project
	failing  map[string]codes.Code    // project -> what it answers every request meanwhile
	limits   map[string]*rate.Limiter // project -> the spans per second it takes (Throttle)
	spans    map[pcommon.SpanID][]landed
	per      map[string]int // spans landed, per project
}

type landed struct {
	project string
	arrived Arrived
}

// StartProjects starts the stand-in on a loopback port, no token accepted yet.
func StartProjects(t T) *Projects {
	t.Helper()
	p := &Projects{accepted: map[string]string{}, failing: map[string]codes.Code{}, limits: map[string]*rate.Limiter{}, spans: map[pcommon.SpanID][]landed{}, per: map[string]int{}}
	next, err := consumer.NewTraces(p.consume)
	if err != nil {
		t.Fatalf("projects: %v", err)
	}
	authID := component.MustNewIDWithName("lightstep", "projects")
	host := pipelinetest.NewHost(map[component.ID]component.Component{authID: projectAuth{p}})
	rcv := pipelinetest.StartTracesReceiver(t, host, map[string]any{
		"auth": map[string]any{"authenticator": authID.String()},
	}, next)
	p.GRPCAddr, p.HTTPAddr = rcv.GRPCAddr, rcv.HTTPAddr
	return p
}

// Accept makes project accept exactly these tokens from now on.
func (p *Projects) Accept(project string, tokens ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for tok, proj := range p.accepted {
		if proj == project {
			delete(p.accepted, tok)
		}
	}
	for _, tok := range tokens {
		p.accepted[tok] = project
	}
}

// Fail makes project answer every request with code (Unavailable: down or
// throttling) until Heal, once its token is checked.
func (p *Projects) Fail(project string, code codes.Code) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing[project] = code
}

// Heal makes project take data again.
func (p *Projects) Heal(project string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.failing, project)
}

// Throttle makes project take at most spansPerSecond (with a burst of four
// seconds' worth, more than one batch): a request over it is answered Unavailable, whole, as a
// throttling backend does. 0 lifts the limit.
func (p *Projects) Throttle(project string, spansPerSecond int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if spansPerSecond <= 0 {
		delete(p.limits, project)
		return
	}
	p.limits[project] = rate.NewLimiter(rate.Limit(spansPerSecond), 4*spansPerSecond)
}

// ThrottleTogether makes projects share one limit of spansPerSecond, as a
// limit every project meets downstream (the gateway's egress) would.
func (p *Projects) ThrottleTogether(spansPerSecond int, projects ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lim := rate.NewLimiter(rate.Limit(spansPerSecond), 4*spansPerSecond)
	for _, project := range projects {
		p.limits[project] = lim
	}
}

// projectAuth is the stand-in's authenticator: the token names the project.
type projectAuth struct{ p *Projects }

func (projectAuth) Start(context.Context, component.Host) error { return nil }
func (projectAuth) Shutdown(context.Context) error              { return nil }

var _ extensionauth.Server = projectAuth{}

func (a projectAuth) Authenticate(ctx context.Context, headers map[string][]string) (context.Context, error) {
	tokens := headers["lightstep-access-token"]
	if len(tokens) == 0 {
		tokens = headers["Lightstep-Access-Token"] // HTTP passes canonical names
	}
	if len(tokens) != 1 {
		return ctx, status.Error(codes.Unauthenticated, "no access token")
	}
	a.p.mu.Lock()
	project, ok := a.p.accepted[tokens[0]]
	a.p.mu.Unlock()
	if !ok {
		return ctx, status.Error(codes.Unauthenticated, "unknown access token")
	}
	info := client.FromContext(ctx)
	info.Auth = projectName(project)
	return client.NewContext(ctx, info), nil
}

// projectName is the project a request was accepted into (client.AuthData).
type projectName string

func (p projectName) GetAttribute(string) any   { return string(p) }
func (projectName) GetAttributeNames() []string { return []string{"project"} }

func (p *Projects) consume(ctx context.Context, td ptrace.Traces) error {
	project, ok := client.FromContext(ctx).Auth.(projectName)
	if !ok {
		return errors.New("no project")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if code, failing := p.failing[string(project)]; failing {
		// After the token check, as Lightstep answers: gRPC that code, HTTP its status (503 for Unavailable).
		return status.Error(code, "project "+string(project)+" is not taking data now")
	}
	if lim := p.limits[string(project)]; lim != nil && !lim.AllowN(time.Now(), td.SpanCount()) {
		return status.Error(codes.Unavailable, "project "+string(project)+" is over its rate")
	}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		res := listOf(rs.Resource().Attributes())
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				id := spans.At(k).SpanID()
				p.spans[id] = append(p.spans[id], landed{string(project), Arrived{Resource: res, Span: listOf(spans.At(k).Attributes())}})
				p.per[string(project)]++
			}
		}
	}
	return nil
}

// Landed lists the projects a span arrived in (once per delivery).
func (p *Projects) Landed(id pcommon.SpanID) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.spans[id] {
		out = append(out, l.project)
	}
	return out
}

// Span returns a span as it first arrived.
func (p *Projects) Span(id pcommon.SpanID) (Arrived, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.spans[id]; len(l) > 0 {
		return l[0].arrived, true
	}
	return Arrived{}, false
}

// CountIn is the number of spans landed in project (each delivery counted).
func (p *Projects) CountIn(project string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.per[project]
}

// Count is the number of distinct spans received, in all projects.
func (p *Projects) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.spans)
}
