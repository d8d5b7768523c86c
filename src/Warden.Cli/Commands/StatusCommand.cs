using System.CommandLine;
using System.Text.Json;
using Spectre.Console;

namespace Warden.Cli.Commands;

internal static class StatusCommand
{
    public static Command Create()
    {
        var url = CommonOptions.Url();
        var token = CommonOptions.Token();
        var json = CommonOptions.Json();
        var command = new Command("status", "Show the running gateway: upstreams (up, down, restarting), sessions, policy version") { url, token, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var status = await api.SendAsync(HttpMethod.Get, "status", cancellationToken: ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(status, Output.Indented));
                return 0;
            }

            var policy = status.GetProperty("policy");
            AnsiConsole.MarkupLine($"[bold]Warden[/] {Markup.Escape(status.GetProperty("version").GetString() ?? "")} at {Markup.Escape(api.BaseUrl)}, up since {status.GetProperty("startedAt").GetDateTimeOffset():u}");
            var version = policy.GetProperty("version").GetString();
            AnsiConsole.MarkupLine(version == "none"
                ? "[red]Policy: none loaded: every call is refused[/]"
                : $"Policy: [bold]{Markup.Escape(version ?? "")}[/] ({policy.GetProperty("rules").GetInt32()} rules)");
            if (policy.TryGetProperty("rejectedProblems", out var problems) && problems.ValueKind == JsonValueKind.Array)
            {
                AnsiConsole.MarkupLine("[yellow]Last reload rejected; the policy above stays in force:[/]");
                foreach (var p in problems.EnumerateArray())
                {
                    AnsiConsole.MarkupLine("  " + Markup.Escape(p.GetString() ?? ""));
                }
            }

            var upstreams = new Table().Title("Upstreams").AddColumns("name", "transport", "state", "connection", "server", "restarts", "last error");
            foreach (var u in status.GetProperty("upstreams").EnumerateArray())
            {
                var state = u.GetProperty("state").GetString() ?? "";
                var colour = state switch { "up" => "green", "down" => "red", _ => "yellow" };
                upstreams.AddRow(
                    Markup.Escape(u.GetProperty("name").GetString() ?? ""),
                    u.GetProperty("transport").GetString() ?? "",
                    $"[{colour}]{state}[/]",
                    u.GetProperty("connection").GetString() ?? "",
                    Markup.Escape(Output.Str(u, "server")),
                    u.GetProperty("restarts").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Markup.Escape(Output.Str(u, "lastError")));
            }

            AnsiConsole.Write(upstreams);
            if (status.TryGetProperty("agents", out var agentList))
            {
                var agents = new Table().Title("Agents").AddColumns("agent", "groups", "state", "sessions", "limits", "data labels", "recent denials");
                foreach (var a in agentList.EnumerateArray())
                {
                    var state = a.GetProperty("state").GetString() ?? "";
                    var stateCell = state == "active" ? "[green]active[/]" : $"[red]{state}[/] by {Markup.Escape(Output.Str(a, "stoppedBy"))}: {Markup.Escape(Output.Str(a, "stopReason"))}";
                    var limits = a.TryGetProperty("limits", out var l) ? string.Join("\n", l.EnumerateArray().Select(x => $"{x.GetProperty("id").GetString()} {x.GetProperty("used").GetDouble():0.#}/{x.GetProperty("capacity").GetInt32()}")) : "";
                    var labels = a.TryGetProperty("labels", out var lb) && lb.ValueKind == JsonValueKind.Array
                        ? string.Join("\n", lb.EnumerateArray().Select(x => $"{x.GetProperty("label").GetString()} until {x.GetProperty("until").GetDateTimeOffset().ToString("u", System.Globalization.CultureInfo.InvariantCulture)}" + (Output.Str(x, "session") is { Length: > 0 } sn ? $" ({sn})" : "")))
                        : "";
                    var denials = a.TryGetProperty("recentDenials", out var d) ? string.Join("\n", d.EnumerateArray().Take(3).Select(x => $"{x.GetProperty("tool").GetString()}: {x.GetProperty("rule").GetString()}")) : "";
                    agents.AddRow(
                        Markup.Escape(a.GetProperty("name").GetString() ?? ""),
                        Markup.Escape(string.Join(", ", a.GetProperty("groups").EnumerateArray().Select(g => g.GetString()))),
                        stateCell,
                        a.GetProperty("sessions").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture),
                        Markup.Escape(limits),
                        Markup.Escape(labels),
                        Markup.Escape(denials));
                }

                AnsiConsole.Write(agents);
            }

            var sessions = new Table().Title("Agent sessions").AddColumns("session", "agent", "since", "in flight");
            foreach (var s in status.GetProperty("sessions").EnumerateArray())
            {
                sessions.AddRow(Markup.Escape(s.GetProperty("id").GetString() ?? ""), Markup.Escape(s.GetProperty("agent").GetString() ?? ""), s.GetProperty("startedAt").GetDateTimeOffset().ToString("u", System.Globalization.CultureInfo.InvariantCulture), s.GetProperty("inFlight").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            AnsiConsole.Write(sessions);
            return 0;
        });
        return command;
    }
}

internal static class Output
{
    public static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static string Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() ?? "" : "";
}
