using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using DeepSeekRL.Silo.Api;
using Npgsql;

namespace DeepSeekRL.Silo.Benchmarks;

/// <summary>
/// <c>bench api</c>: a campaign with 10,000 steps of metrics and 1,000,000 completions (2 rule scores each, a quarter
/// accepted as SFT samples, a tenth repairing a mistake) in PostgreSQL; times the API calls the dashboard makes: the campaign page's data (status +
/// all step metrics) and sample pages (first page, filtered, deep).
/// </summary>
internal static class ApiBenchmark
{
    private const int Steps = 10_000;
    private const int Completions = 1_000_000;

    public static async Task RunAsync(BenchDatabase db, int runs, BenchReport report, CancellationToken cancellationToken)
    {
        var id = await FillAsync(db, cancellationToken);
        var port = FreePort();
        var (token, _) = await ApiToken.InitializeAsync(db.DataSource, "bench-token-0123456789", cancellationToken);
        await using var app = await ApiServer.StartAsync(db.DataSource, new ApiServerOptions { Port = port }, token, cancellationToken);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var firstStep = await FirstCompletionIdAsync(db.DataSource, id, Completions / 2, cancellationToken);
        await RunCallsAsync(http, id, firstStep, runs, report, cancellationToken);
    }

    /// <summary>Stores the benchmark campaign (10,000 steps, 1,000,000 completions); returns its id.</summary>
    public static async Task<long> FillAsync(BenchDatabase db, CancellationToken cancellationToken)
    {
        var fill = Stopwatch.StartNew();
        long id;
        await using (var command = db.DataSource.CreateCommand(
            "INSERT INTO campaigns (name, state, spec, mode, total_steps, steps_completed) VALUES ('bench-api', 'completed', '{}', 'train', $1, $1) RETURNING id"))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = Steps });
            id = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
        }

        foreach (var sql in new[]
        {
            $"""
            INSERT INTO step_metrics (campaign_id, step, epoch, metrics)
            SELECT {id}, s, 1, jsonb_build_object('step', s, 'reward_mean', random(), 'reward_std', random(), 'rewards', jsonb_build_object('accuracy', random(), 'format_r1', random()),
                   'response_length_mean', 100 + random() * 50, 'response_length_max', 256, 'clipped_length_ratio', random() * 0.1, 'kl', random() * 0.01,
                   'entropy', 1 + random(), 'clip_fraction', random() * 0.1, 'clip_low_fraction', random() * 0.05, 'clip_high_fraction', random() * 0.05,
                   'zero_std_group_fraction', random() * 0.3, 'completion_tokens', 4096, 'sampling_seconds', 1 + random(), 'scoring_seconds', 0.01,
                   'update_seconds', 0.8, 'publish_seconds', 0.15,
                   'verify_fraction', random() * 0.5, 'detect_fraction', random() * 0.2, 'repair_fraction', random() * 0.1,
                   'accuracy_when_verifying', CASE WHEN s % 50 = 0 THEN NULL ELSE random() END, 'accuracy_without_verifying', random(),
                   'expert_load', jsonb_build_array(jsonb_build_array(), (SELECT jsonb_agg((random() * 100)::int) FROM generate_series(1, 16)),
                                                    (SELECT jsonb_agg((random() * 100)::int) FROM generate_series(1, 16)), (SELECT jsonb_agg((random() * 100)::int) FROM generate_series(1, 16))))
              FROM generate_series(0, {Steps - 1}) s
            """,
            $"""
            INSERT INTO completions (campaign_id, step, item_id, sample_index, policy_version, prompt, token_ids, text, logprobs, finish_reason, reward, reflection)
            SELECT {id}, i / 100, i / 8, i % 8, i / 100, 'What is ' || (i % 997) || ' + ' || (i % 991) || '?', ARRAY[1, 2, 3], 
                   '<think>\nadd the digits of ' || i || ' step by step, carrying where needed\n</think>\n<answer>' || (i % 1000) || '</answer>',
                   ARRAY[-0.1, -0.2, -0.3]::real[], 'stop', (i % 4) / 3.0, (ARRAY[7, 3, 1, 1, 0, 0, 0, 0, 0, 0]::smallint[])[i % 10 + 1]
              FROM generate_series(0, {Completions - 1}) i
            """,
            $"""
            INSERT INTO reward_scores (completion_id, rule, value)
            SELECT c.id, r.rule, CASE WHEN r.rule = 'accuracy' THEN (c.id % 4 = 0)::int ELSE (c.id % 2) END
              FROM completions c CROSS JOIN (VALUES ('accuracy'), ('format_r1')) AS r(rule) WHERE c.campaign_id = {id}
            """,
            $$"""
            INSERT INTO sft_samples (campaign_id, step, policy_version, completion_id, prompt, reasoning, answer, reward, scores, verdicts)
            SELECT {{id}}, step, policy_version, id, prompt, 'add the digits', '42', reward, '{"accuracy": 1}', '{"accuracy==1": true}'
              FROM completions WHERE campaign_id = {{id}} AND id % 4 = 0
            """,
            $"""
            INSERT INTO evaluations (campaign_id, step, policy_version, metrics)
            SELECT {id}, s, s, jsonb_build_object('step', s, 'accuracy', random(), 'reward_mean', random(), 'response_length_mean', 100 + random() * 50,
                   'accuracy_first_attempt', random() * 0.5, 'accuracy_final', 0.5 + random() * 0.5, 'verify_fraction', random(), 'repair_fraction', random() * 0.2)
              FROM generate_series(0, {Steps - 1}, 100) s
            """,
            "ANALYZE",
        })
        {
            await using var command = db.DataSource.CreateCommand(sql);
            command.CommandTimeout = 600;
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  filled {Steps} steps and {Completions} completions in {fill.Elapsed.TotalSeconds:0.0} s"));
        return id;
    }

    /// <summary>A free loopback TCP port.</summary>
    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private static async Task RunCallsAsync(HttpClient http, long id, long firstStep, int runs, BenchReport report, CancellationToken cancellationToken)
    {
        var calls = new (string Metric, string Note, string[] Paths)[]
        {
            ("api_campaign_page_ms", "campaign page data: status + evaluations and all 10,000 steps of metrics", [$"/api/campaigns/{id}", $"/api/campaigns/{id}/steps"]),
            ("api_sample_page_ms", "first sample page (50)", [$"/api/campaigns/{id}/samples"]),
            ("api_sample_page_deep_ms", "a sample page half-way through (after_id)", [$"/api/campaigns/{id}/samples?after_id={firstStep}"]),
            ("api_sample_page_step_ms", "samples of one step", [$"/api/campaigns/{id}/samples?step=5000"]),
            ("api_sample_page_rule_ms", "samples with accuracy >= 1 and accepted", [$"/api/campaigns/{id}/samples?rule=accuracy&min=1&accepted=true"]),
            ("api_sample_page_rejected_ms", "rejected samples", [$"/api/campaigns/{id}/samples?accepted=false"]),
            ("api_sample_page_text_ms", "text search (a prompt substring)", [$"/api/campaigns/{id}/samples?q=996%20%2B%20990"]),
            ("api_sample_page_repair_ms", "completions that repair a mistake (a tenth)", [$"/api/campaigns/{id}/samples?reflection=repair"]),
        };
        foreach (var (metric, note, paths) in calls)
        {
            var times = new List<double>();
            for (var run = 0; run <= Math.Max(runs, 5); run++)
            {
                var started = Stopwatch.GetTimestamp();
                long bytes = 0;
                foreach (var path in paths)
                {
                    using var response = await http.GetAsync(path, cancellationToken);
                    response.EnsureSuccessStatusCode();
                    bytes += (await response.Content.ReadAsByteArrayAsync(cancellationToken)).Length;
                }

                if (run > 0)
                {
                    times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
            }

            report.Add(metric, BenchReport.Median(times), note);
        }
    }

    private static async Task<long> FirstCompletionIdAsync(NpgsqlDataSource dataSource, long campaign, int offset, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT id FROM completions WHERE campaign_id = $1 ORDER BY id OFFSET $2 LIMIT 1");
        command.Parameters.Add(new NpgsqlParameter { Value = campaign });
        command.Parameters.Add(new NpgsqlParameter { Value = offset });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }
}
