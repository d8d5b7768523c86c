using Warden.Core.Stops;
using static Warden.Core.Tests.Policy.PolicyKit;

namespace Warden.Core.Tests.Stops;

public sealed class StopTableTests
{
    private static StopRecord Pause(string id) => new(id, StopScope.Agent, "a", "breaker:b", "too fast", DateTimeOffset.UnixEpoch, IsPause: true);

    [Fact]
    public void AddPauseOnce_ManyConcurrentTrips_LeaveOnePause()
    {
        var table = new StopTable();
        var winners = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 200, i => winners.Add(table.AddPauseOnce(Pause("p" + i)).Id));
        var only = Assert.Single(table.Stops);
        Assert.All(winners, id => Assert.Equal(only.Id, id));
    }

    [Fact]
    public void Find_CoversByScope_AndStageRefusesWithTheStopMessage()
    {
        var table = new StopTable();
        table.Add(new StopRecord("s1", StopScope.Server, "mail", "alice", "maintenance", DateTimeOffset.UnixEpoch));
        var stage = new StopStage(table, () => "v1");
        Assert.Null(stage.Evaluate(Call("docs", "read")));
        var decision = stage.Evaluate(Call("mail", "delete_mail"));
        Assert.Equal(Effect.Deny, decision?.Effect);
        Assert.StartsWith("stopped by alice at 1970-01-01 00:00:00Z: maintenance", decision?.AgentMessage, StringComparison.Ordinal);
        Assert.True(table.Remove("s1"));
        Assert.Null(stage.Evaluate(Call("mail", "delete_mail")));
    }
}
