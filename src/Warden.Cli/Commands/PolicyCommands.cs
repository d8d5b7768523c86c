using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Warden.Core;
using Warden.Core.Pipeline;
using Warden.Core.Policy;
using Warden.Core.Text;
using Warden.Gateway.Configuration;
using Warden.Gateway.Policy;

namespace Warden.Cli.Commands;

internal static partial class PolicyCommands
{
    public static Command Create()
    {
        var command = new Command("policy", "Check, explain, test and reload policy");
        command.Subcommands.Add(Check());
        command.Subcommands.Add(Explain());
        command.Subcommands.Add(Test());
        command.Subcommands.Add(Reload());
        return command;
    }

    private static Command Check()
    {
        var path = new Argument<string>("path") { Description = "A policy file or folder" };
        var config = new Option<string?>("--config", "-c") { Description = "warden.yaml, to check server references" };
        var json = CommonOptions.Json();
        var strict = new Option<bool>("--strict") { Description = "Treat warnings (shadowed rules, unknown groups) as errors" };
        var command = new Command("check", "Report every problem in a policy with file:line:column and a hint (offline)") { path, config, json, strict };
        command.SetAction(parse =>
        {
            var references = parse.GetValue(config) is { } c ? new PolicyReferences { Servers = [.. ServeCommand.LoadConfig(c).Servers.Keys] } : null;
            var result = PolicyFiles.Compile(parse.GetValue(path)!, references);
            var failed = !result.Success || (parse.GetValue(strict) && result.Diagnostics.Count > 0);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    ok = !failed,
                    version = result.Policy?.Version,
                    rules = result.Policy?.Rules.Count,
                    problems = result.Diagnostics.Select(d => new { file = d.File, line = d.Line, column = d.Column, severity = d.IsWarning ? "warning" : "error", message = d.Message, hint = d.Hint }),
                }, Output.Indented));
            }
            else
            {
                PrintDiagnostics(result.Diagnostics);
                if (result.Policy is { } p)
                {
                    AnsiConsole.MarkupLine($"[green]ok[/]: policy {p.Version}, {p.Rules.Count} rules, default {EffectNames.Name(p.Default)}");
                }
            }

            return failed ? 1 : 0;
        });
        return command;
    }

    internal static void PrintDiagnostics(IEnumerable<SourceDiagnostic> diagnostics)
    {
        foreach (var d in diagnostics)
        {
            var colour = d.IsWarning ? "yellow" : "red";
            AnsiConsole.MarkupLine($"{Markup.Escape($"{d.File}:{d.Line}:{d.Column}")}: [{colour}]{(d.IsWarning ? "warning" : "error")}[/]: {Markup.Escape(d.Message)}{(d.Hint is null ? "" : $" [grey](hint: {Markup.Escape(d.Hint)})[/]")}");
        }
    }

    private static Command Explain()
    {
        var policy = new Option<string?>("--policy", "-p") { Description = "Policy file or folder (default: the one warden.yaml names)" };
        var config = CommonOptions.Config();
        var agent = new Option<string>("--agent") { Description = "The agent's name", Required = true };
        var groups = new Option<string[]>("--group", "-g") { Description = "Groups the agent's credential holds (repeatable)", AllowMultipleArgumentsPerToken = true };
        var tool = new Option<string>("--tool") { Description = "The tool as agents see it: SERVER__TOOL", Required = true };
        var args = new Option<string>("--args") { Description = "The arguments as a JSON object", DefaultValueFactory = _ => "{}" };
        var classes = new Option<string[]>("--class") { Description = "The tool's classes from its annotations (read_only, mutating, destructive, outbound); default: an unannotated tool's", AllowMultipleArgumentsPerToken = true };
        var labels = new Option<string[]>("--label") { Description = "Labels the agent carries from earlier reads (confidential, ...; repeatable)", AllowMultipleArgumentsPerToken = true };
        var json = CommonOptions.Json();
        var command = new Command("explain", "Show the decision for a call and, for each rule, whether it matched and why (offline)") { policy, config, agent, groups, tool, args, classes, labels, json };
        command.SetAction(parse =>
        {
            string policyPath;
            var separator = "__";
            if (parse.GetValue(policy) is { } explicitPath)
            {
                policyPath = explicitPath;
            }
            else
            {
                var cfg = ServeCommand.LoadConfig(parse.GetValue(config)!);
                separator = cfg.ToolSeparator;
                policyPath = cfg.Policy is { } p ? cfg.Resolve(p) : throw new CliException("warden.yaml names no policy; pass --policy PATH", 2);
            }

            var result = PolicyFiles.Compile(policyPath);
            if (result.Policy is not { } compiled)
            {
                PrintDiagnostics(result.Diagnostics);
                return 1;
            }

            var call = BuildCall(parse.GetValue(agent)!, parse.GetValue(groups) ?? [], parse.GetValue(tool)!, separator, parse.GetValue(args)!, parse.GetValue(classes) ?? []);
            call.SessionLabels = parse.GetValue(labels) ?? [];
            var (decision, trace) = compiled.Explain(call);
            if (compiled.DataGuard is { } guard && !decision.IsError && decision.Effect != Effect.Deny)
            {
                // The data guard's verdict on these arguments, as the gateway would reach it (without fingerprints).
                decision = Warden.Core.DataGuard.DataGuardStage.Apply(guard, call, decision, null);
            }

            var findings = call.Findings ?? [];
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    effect = decision.IsError ? "error" : EffectNames.Name(decision.Effect),
                    rule = decision.RuleId,
                    reason = decision.Reason,
                    policyVersion = decision.PolicyVersion,
                    classes = ToolClassifier.Names(compiled.EffectiveClasses(call)),
                    rules = trace.Select(t => new { id = t.RuleId, matched = t.Matched, effect = EffectNames.Name(t.Effect), why = t.Why }),
                    findings = findings.Select(f => new
                    {
                        kind = f.Kind,
                        category = Warden.Core.DataGuard.Finding.CategoryName(f.Category),
                        location = f.Location,
                        confidence = Math.Round(f.Confidence, 2),
                        masked = f.Masked,
                        encoding = f.Encoding,
                        action = Warden.Core.DataGuard.DataGuardPolicy.Names(compiled.DataGuard!.ActionFor(f, Warden.Core.DataGuard.GuardDirection.Arguments)),
                    }),
                }, Output.Indented));
                return 0;
            }

            var colour = decision.Effect switch { Effect.Allow => "green", Effect.Deny => "red", _ => "yellow" };
            AnsiConsole.MarkupLine($"Decision: [{colour} bold]{(decision.IsError ? "error (deny)" : EffectNames.Name(decision.Effect))}[/] by [bold]{Markup.Escape(decision.RuleId)}[/] under policy {decision.PolicyVersion}{(decision.Reason is null ? "" : ": " + Markup.Escape(decision.Reason))}");
            AnsiConsole.MarkupLine($"Tool classes: {string.Join(", ", ToolClassifier.Names(compiled.EffectiveClasses(call)))}");
            var table = new Table().AddColumns("rule", "effect", "matched", "why");
            foreach (var t in trace)
            {
                table.AddRow(Markup.Escape(t.RuleId), EffectNames.Name(t.Effect), t.Matched ? "[green]yes[/]" : "no", Markup.Escape(t.Why));
            }

            AnsiConsole.Write(table);
            if (findings.Count > 0)
            {
                var ft = new Table().AddColumns("data guard finding", "location", "encoding", "confidence", "value (masked)", "action");
                foreach (var f in findings)
                {
                    ft.AddRow(Markup.Escape(f.Kind), Markup.Escape(f.Location), Markup.Escape(f.Encoding ?? "-"), f.Confidence.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture), Markup.Escape(f.Masked),
                        Warden.Core.DataGuard.DataGuardPolicy.Names(compiled.DataGuard!.ActionFor(f, Warden.Core.DataGuard.GuardDirection.Arguments)));
                }

                AnsiConsole.Write(ft);
            }

            return 0;
        });
        return command;
    }

    internal static CallContext BuildCall(string agent, IReadOnlyList<string> groups, string tool, string separator, string argsJson, IReadOnlyList<string> classNames)
    {
        var i = tool.IndexOf(separator, StringComparison.Ordinal);
        if (i <= 0)
        {
            throw new CliException($"--tool must be SERVER{separator}TOOL, not '{tool}'", 2);
        }

        Dictionary<string, JsonElement>? arguments;
        try
        {
            using var doc = JsonDocument.Parse(argsJson);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new CliException("--args must be a JSON object", 2);
            }

            arguments = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
        }
        catch (JsonException ex)
        {
            throw new CliException("--args is not valid JSON: " + ex.Message, 2);
        }

        var classes = ToolClasses.None;
        foreach (var c in classNames)
        {
            classes |= ToolClassifier.Parse(c) ?? throw new CliException($"unknown class '{c}'", 2);
        }

        return new CallContext
        {
            Agent = new AgentIdentity(agent, groups),
            SessionId = agent,
            Operation = McpOperation.ToolCall,
            Server = tool[..i],
            Target = tool[(i + separator.Length)..],
            Arguments = arguments,
            AnnotatedClasses = classNames.Count > 0 ? classes : ToolClassifier.FromAnnotations(null, null, null),
            ReceivedAt = DateTimeOffset.UtcNow,
        };
    }

    private static Command Reload()
    {
        var url = CommonOptions.Url();
        var token = CommonOptions.Token();
        var json = CommonOptions.Json();
        var command = new Command("reload", "Ask the running gateway to reload its policy (a bad policy is rejected; the last good one stays)") { url, token, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var result = await api.SendAsync(HttpMethod.Post, "policy/reload", new { }, ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(result, Output.Indented));
            }
            else if (result.GetProperty("loaded").GetBoolean())
            {
                AnsiConsole.MarkupLine($"[green]policy {Markup.Escape(result.GetProperty("version").GetString() ?? "")} in force[/]");
            }
            else
            {
                AnsiConsole.MarkupLine("[red]reload rejected; the previous policy stays in force:[/]");
                foreach (var e in result.GetProperty("errors").EnumerateArray())
                {
                    AnsiConsole.MarkupLine("  " + Markup.Escape(e.GetString() ?? ""));
                }
            }

            return result.GetProperty("loaded").GetBoolean() ? 0 : 1;
        });
        return command;
    }
}
