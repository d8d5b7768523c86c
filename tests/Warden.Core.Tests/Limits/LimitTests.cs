using Microsoft.Extensions.Time.Testing;
using Warden.Core.Limits;
using Warden.Core.Policy;
using static Warden.Core.Tests.Policy.PolicyKit;

namespace Warden.Core.Tests.Limits;

// Limits are counted with a fake clock: windows and refills are tested without sleeping.
public sealed class LimitTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 2, 10, 0, 0, TimeSpan.Zero));

    private static CompiledPolicy Policy(string limits) => Compile(
        "default: allow\nclasses:\n  mail: { delete_*: [mutating, destructive], list_*: [read_only] }\nlimits:\n" + limits);

    private LimitVerdict Take(CompiledPolicy policy, LimitCounters counters, string tool = "delete_mail", string agent = "a", string? session = null)
    {
        var call = Call("mail", tool, agent: agent);
        call = session is null ? call : new Core.Pipeline.CallContext
        {
            Agent = call.Agent, SessionId = session, Operation = call.Operation, Server = call.Server, Target = call.Target, AnnotatedClasses = call.AnnotatedClasses,
        };
        return counters.Acquire(policy.LimitsFor(call), call, out _);
    }

    [Fact]
    public void Rate_AllowsBurstThenRefusesUntilRefill()
    {
        var policy = Policy("""
              - id: velocity
                match: { class: destructive }
                rate: 10 per minute
            """);
        var counters = new LimitCounters(_time);
        for (var i = 0; i < 10; i++)
        {
            Assert.True(Take(policy, counters).Ok, $"call {i}");
        }

        var refused = Take(policy, counters);
        Assert.Equal("velocity", refused.Exceeded?.Id);
        Assert.Contains("limit velocity exceeded", refused.Message, StringComparison.Ordinal);

        _time.Advance(TimeSpan.FromSeconds(6)); // one token per 6 s
        Assert.True(Take(policy, counters).Ok);
        Assert.False(Take(policy, counters).Ok);
    }

    [Fact]
    public void Reset_ForgetsTheAgentsCount_EvenRightAfterItsLastCall()
    {
        // An operator's resume of a breaker's pause resets the window; the agent's very next call must count from
        // zero, not on the counter its previous calls used.
        var policy = Policy("""
              - id: breaker
                match: { class: destructive }
                budget: 2 per hour
            """);
        var counters = new LimitCounters(_time);
        Assert.True(Take(policy, counters).Ok);
        Assert.True(Take(policy, counters).Ok);
        Assert.False(Take(policy, counters).Ok);

        Assert.Equal(1, counters.Reset("breaker", "a"));
        Assert.True(Take(policy, counters).Ok);
        Assert.True(Take(policy, counters).Ok);
        Assert.False(Take(policy, counters).Ok);
    }

    [Fact]
    public void Counts_StaySeparate_WhenAgentsAlternate()
    {
        var policy = Policy("""
              - id: velocity
                match: { class: destructive }
                rate: 3 per minute
            """);
        var counters = new LimitCounters(_time);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(Take(policy, counters, agent: "a").Ok);
            Assert.True(Take(policy, counters, agent: "b").Ok);
        }

        Assert.False(Take(policy, counters, agent: "a").Ok);
        Assert.False(Take(policy, counters, agent: "b").Ok);
        Assert.True(Take(policy, counters, agent: "c").Ok);
    }

    [Fact]
    public void Rate_OnlyCountsMatchingCalls()
    {
        var policy = Policy("""
              - id: velocity
                match: { class: destructive }
                rate: 1 per minute
            """);
        var counters = new LimitCounters(_time);
        Assert.True(Take(policy, counters).Ok);
        for (var i = 0; i < 20; i++)
        {
            Assert.True(Take(policy, counters, tool: "list_mail").Ok);
        }

        Assert.False(Take(policy, counters).Ok);
    }

    [Fact]
    public void Budget_IsPerAgentAcrossSessions_ByDefault()
    {
        var policy = Policy("""
              - id: daily
                match: { tool: delete_* }
                budget: 3 per day
            """);
        var counters = new LimitCounters(_time);
        Assert.True(Take(policy, counters, session: "a/s1").Ok);
        Assert.True(Take(policy, counters, session: "a/s2").Ok);
        Assert.True(Take(policy, counters, session: "a/s3").Ok);
        Assert.False(Take(policy, counters, session: "a/s4").Ok);
        Assert.True(Take(policy, counters, agent: "b").Ok);

        _time.Advance(TimeSpan.FromHours(24));
        Assert.True(Take(policy, counters, session: "a/s5").Ok);
    }

    [Fact]
    public void Budget_PerSession_CountsEachSessionApart()
    {
        var policy = Policy("""
              - id: per-session
                match: { tool: delete_* }
                budget: 1 per hour per session
            """);
        var counters = new LimitCounters(_time);
        Assert.True(Take(policy, counters, session: "a/s1").Ok);
        Assert.False(Take(policy, counters, session: "a/s1").Ok);
        Assert.True(Take(policy, counters, session: "a/s2").Ok);
    }

    [Fact]
    public void Concurrency_ReleasesWhenTheCallEnds()
    {
        var policy = Policy("""
              - id: two-at-once
                match: { tool: delete_* }
                concurrency: 2
            """);
        var counters = new LimitCounters(_time);
        var call = Call("mail", "delete_mail", agent: "a");
        Assert.True(counters.Acquire(policy.LimitsFor(call), call, out var r1).Ok);
        Assert.True(counters.Acquire(policy.LimitsFor(call), call, out var r2).Ok);
        Assert.False(counters.Acquire(policy.LimitsFor(call), call, out var r3).Ok);
        Assert.Null(r3);
        r1!.Dispose();
        r1.Dispose(); // twice is harmless
        Assert.True(counters.Acquire(policy.LimitsFor(call), call, out var r4).Ok);
        Assert.False(counters.Acquire(policy.LimitsFor(call), call, out _).Ok);
        r2!.Dispose();
        r4!.Dispose();
        Assert.Equal(0, counters.Level(policy.Limits[0], "a")?.Used);
    }

    [Fact]
    public void Concurrency_OneCallPerContext_ReleasesThroughTheCallItself_Once()
    {
        var policy = Policy("""
              - id: one-at-once
                match: { tool: delete_* }
                concurrency: 1
              - id: rate
                match: { tool: delete_* }
                rate: 100 per second
            """);
        var counters = new LimitCounters(_time);
        var first = Call("mail", "delete_mail", agent: "a");
        Assert.True(counters.Acquire(policy.LimitsFor(first), first, out var release).Ok);
        Assert.Same(first, release);
        var second = Call("mail", "delete_mail", agent: "a");
        Assert.Equal("one-at-once", counters.Acquire(policy.LimitsFor(second), second, out var none).Exceeded?.Id);
        Assert.Null(none);
        release!.Dispose();
        release.Dispose();
        Assert.True(counters.Acquire(policy.LimitsFor(second), second, out var again).Ok);
        Assert.Equal(1, counters.Level(policy.Limits[0], "a")?.Used);
        again!.Dispose();
        Assert.Equal(0, counters.Level(policy.Limits[0], "a")?.Used);
    }

    [Fact]
    public async Task Concurrency_NeverExceedsItsCap_UnderParallelCallers()
    {
        var policy = Policy("""
              - id: at-once
                match: { class: destructive }
                concurrency: 3
            """);
        var counters = new LimitCounters(_time);
        var limits = policy.LimitsFor(Call("mail", "delete_mail"));
        var inside = 0;
        var most = 0;
        var admitted = 0;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                var call = Call("mail", "delete_mail");
                if (!counters.Acquire(limits, call, out var release).Ok)
                {
                    continue;
                }

                Interlocked.Increment(ref admitted);
                var now = Interlocked.Increment(ref inside);
                int seen;
                while ((seen = Volatile.Read(ref most)) < now && Interlocked.CompareExchange(ref most, now, seen) != seen)
                {
                }

                Interlocked.Decrement(ref inside);
                release!.Dispose();
                release.Dispose(); // a second release is harmless
            }
        })));

        Assert.InRange(most, 1, 3);
        Assert.True(admitted > 0);
        Assert.Equal((0.0, 3), counters.Level(limits[0], "agent-1")); // every slot came back
    }

    [Fact]
    public void Breaker_TripsOnTheCallPastTheCount_AndDefaultsToPause()
    {
        var policy = Policy("""
              - id: delete-breaker
                match: { class: destructive }
                breaker: 10 in 60s
            """);
        Assert.Equal(ExceedAction.PauseAgent, policy.Limits[0].OnExceed);
        var counters = new LimitCounters(_time);
        for (var i = 0; i < 10; i++)
        {
            Assert.True(Take(policy, counters).Ok);
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal("delete-breaker", Take(policy, counters).Exceeded?.Id);
        _time.Advance(TimeSpan.FromSeconds(60));
        Assert.True(Take(policy, counters).Ok);
    }

    [Fact]
    public void Refusal_GivesBackWhatEarlierLimitsTook()
    {
        var policy = Policy("""
              - id: budget
                match: { tool: delete_* }
                budget: 5 per hour
              - id: strict
                match: { tool: delete_* }
                budget: 1 per hour
            """);
        var counters = new LimitCounters(_time);
        Assert.True(Take(policy, counters).Ok);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("strict", Take(policy, counters).Exceeded?.Id);
        }

        var level = counters.Level(policy.Limits[0], "a");
        Assert.Equal(1, level?.Used);
    }

    [Fact]
    public void Budget_LargeCount_IsEnforcedWithBoundedMemory_AndFreesAfterTheWindow()
    {
        var policy = Policy("""
              - id: big
                match: { tool: delete_* }
                budget: 1000 per hour
            """);
        var counters = new LimitCounters(_time);
        for (var i = 0; i < 1000; i++)
        {
            Assert.True(Take(policy, counters).Ok, $"call {i}");
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.False(Take(policy, counters).Ok);
        Assert.Equal(1000, counters.Level(policy.Limits[0], "a")?.Used);

        // Buckets are 1/64 of the window: a full window later everything has aged out.
        _time.Advance(TimeSpan.FromHours(1));
        Assert.True(Take(policy, counters).Ok);
    }

    [Theory]
    [InlineData("10 per minute", 10, 60)]
    [InlineData("10/min", 10, 60)]
    [InlineData("50 per day", 50, 86400)]
    [InlineData("10 in 60s", 10, 60)]
    [InlineData("3 per 30s per session", 3, 30)]
    public void TryParseAmount_ReadsCommonForms(string text, int count, int seconds)
    {
        Assert.True(LimitRule.TryParseAmount(text, out var c, out var w));
        Assert.Equal(count, c);
        Assert.Equal(TimeSpan.FromSeconds(seconds), w);
    }

    [Theory]
    [InlineData("ten per minute")]
    [InlineData("0 per minute")]
    [InlineData("10 per fortnight")]
    public void TryParseAmount_RejectsNonsense(string text) => Assert.False(LimitRule.TryParseAmount(text, out _, out _));
}
