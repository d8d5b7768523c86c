using System.ComponentModel;
using System.Text.Json.Nodes;
using ModelContextProtocol;
using ModelContextProtocol.Server;

namespace Warden.Samples.Workplace.Tools;

[McpServerToolType]
public static class SlowTools
{
    [McpServerTool(Name = "slow_operation", Title = "Slow operation", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false)]
    [Description("Waits the given time in equal steps, reporting progress after each step if the caller sent a progress token. Cancellable.")]
    public static async Task<string> SlowOperation(
        IProgress<ProgressNotificationValue> progress,
        [Description("Total duration in seconds (0-300).")] double seconds,
        [Description("Number of steps, each followed by a progress notification (1-1000).")] int steps = 10,
        CancellationToken cancellationToken = default)
    {
        if (seconds is < 0 or > 300 || double.IsNaN(seconds))
        {
            throw new WorkplaceException("seconds must be between 0 and 300.");
        }

        if (steps is < 1 or > 1000)
        {
            throw new WorkplaceException("steps must be between 1 and 1000.");
        }

        var step = TimeSpan.FromSeconds(seconds / steps);
        for (int i = 1; i <= steps; i++)
        {
            OperationLog.Note("stepsCompleted", i - 1);
            await Task.Delay(step, cancellationToken);
            progress.Report(new ProgressNotificationValue { Progress = i, Total = steps, Message = $"step {i} of {steps}" });
        }

        OperationLog.Note("stepsCompleted", steps);
        return ToolResults.Json(new JsonObject { ["completed"] = true, ["steps"] = steps, ["seconds"] = seconds });
    }
}
