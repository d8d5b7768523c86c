using System.CommandLine;
using Spectre.Console;
using Warden.Core.Policy;
using Warden.Gateway.Policy;

namespace Warden.Cli.Commands;

internal static partial class PolicyCommands
{
    private static Command Test()
    {
        var path = new Argument<string>("path") { Description = "A test file (*.test.yaml) or a folder holding policy and test files" };
        var json = CommonOptions.Json();
        var command = new Command("test", "Run policy test cases (call, context, expected effect and rule); exits non-zero on any miss") { path, json };
        command.SetAction(parse =>
        {
            var target = parse.GetValue(path)!;
            var testFiles = Directory.Exists(target)
                ? Directory.EnumerateFiles(target, "*.test.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList()
                : [target];
            if (testFiles.Count == 0)
            {
                throw new CliException($"no *.test.yaml files in {target}", 2);
            }

            var failures = 0;
            var total = 0;
            var rows = new List<(string File, string Case, bool Ok, string Detail)>();
            foreach (var file in testFiles)
            {
                var suite = PolicyTestSuite.Parse(file, File.ReadAllText(file));
                if (suite.Diagnostics.Count > 0)
                {
                    PrintDiagnostics(suite.Diagnostics);
                    failures++;
                    continue;
                }

                var policyPath = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, suite.PolicyPath ?? "."));
                var compiled = PolicyFiles.Compile(policyPath);
                if (compiled.Policy is not { } policy)
                {
                    PrintDiagnostics(compiled.Diagnostics);
                    failures++;
                    continue;
                }

                foreach (var result in suite.Run(policy))
                {
                    total++;
                    if (!result.Passed)
                    {
                        failures++;
                    }

                    rows.Add((Path.GetFileName(file), result.Name, result.Passed, result.Detail));
                }
            }

            if (parse.GetValue(json))
            {
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { total, failed = failures, cases = rows.Select(r => new { file = r.File, name = r.Case, passed = r.Ok, detail = r.Detail }) }, Output.Indented));
            }
            else
            {
                var table = new Table().AddColumns("file", "case", "result", "detail");
                foreach (var r in rows)
                {
                    table.AddRow(Markup.Escape(r.File), Markup.Escape(r.Case), r.Ok ? "[green]pass[/]" : "[red]FAIL[/]", Markup.Escape(r.Detail));
                }

                AnsiConsole.Write(table);
                AnsiConsole.MarkupLine($"{total - failures} passed, {failures} failed");
            }

            return failures == 0 ? 0 : 1;
        });
        return command;
    }
}
