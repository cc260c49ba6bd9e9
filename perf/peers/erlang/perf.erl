%% Erlang/OTP peer for the Troupe comparison workloads.
%%
%% Started by run.sh as
%%   erl -noshell +S W:W -run perf main WORKLOAD N RUNS FORMAT
%% where N is a number or "default" and FORMAT is "text" or "json".
%%
%% Every run prints "erlang <workload> <value> <unit>" (or one JSON object);
%% spawn also prints a "spawn-bytes" line and restart-latency prints two lines
%% (p50 and p99). The message-passing workloads use plain processes, `!` and
%% `receive` only (plus one spawn option for the fan-in receiver); the restart
%% workloads use a real OTP supervisor (one_for_one) over a gen_server, both
%% implemented by this module (see "restart" below). The remote workloads run
%% between this node and a peer node that each run starts (see "remote"
%% below); run.sh starts this node distributed for them. Each run is guarded
%% by a watchdog process that halts the node with status 1 when the run takes
%% longer than 120 s (the peer node then goes down with it).

-module(perf).
-export([main/1]).
%% Callbacks of both the supervisor and the gen_server of the restart
%% workloads; init/1 tells them apart by its argument.
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).
%% Started on the peer node of the remote workloads.
-export([remote_pong/1, remote_receiver/1]).

-define(RUN_LIMIT_MS, 120000).
-define(BURST, 1000).
-define(RING_SIZE, 503).
-define(RESTARTS_PER_SUPERVISOR, 100).
-define(LATENCY_WARMUP, 1000).
-define(RESTART_CHILD, perf_restart_child).
-define(PEER_BOOT_MS, 30000).

%% -- entry point --------------------------------------------------------------

main([Workload, NArg, RunsArg, Format]) ->
    N = case NArg of
            "default" -> default_n(Workload);
            _ -> list_to_integer(NArg)
        end,
    Runs = list_to_integer(RunsArg),
    Json = Format =:= "json",
    check_args(Workload, N, Runs),
    lists:foreach(fun(_) -> guarded_run(Workload, N, Json) end,
                  lists:seq(1, Runs)),
    erlang:halt(0);
main(Args) ->
    fail("bad arguments: ~p", [Args]).

default_n("pingpong") -> 2000000;
default_n("fanin-k" ++ _) -> 8000000;
default_n("ring") -> 10000000;
default_n("spawn") -> 1000000;
default_n("skynet") -> 1000000;
default_n("restart-fresh") -> 200000;
default_n("restart-sustained") -> 100000;
default_n("restart-latency") -> 20000;
default_n("remote-pingpong") -> 20000;
default_n("remote-pipeline") -> 2000000;
default_n(Other) -> fail("unknown workload ~s", [Other]).

check_args(Workload, N, Runs) ->
    N > 0 orelse fail("--n must be positive", []),
    Runs > 0 orelse fail("--runs must be positive", []),
    case Workload of
        "skynet" -> is_power_of_ten(N) orelse
                        fail("skynet --n (leaves) must be a power of 10, >= 10",
                             []);
        _ -> ok
    end.

is_power_of_ten(10) -> true;
is_power_of_ten(N) when N > 10, N rem 10 =:= 0 -> is_power_of_ten(N div 10);
is_power_of_ten(_) -> false.

fail(Fmt, Args) ->
    io:format(standard_error, "perf.erl: " ++ Fmt ++ "~n", Args),
    erlang:halt(1).

guarded_run(Workload, N, Json) ->
    Dog = spawn(fun() ->
                        receive
                            cancel -> ok
                        after ?RUN_LIMIT_MS ->
                                fail("workload ~s did not finish within ~b s",
                                     [Workload, ?RUN_LIMIT_MS div 1000])
                        end
                end),
    run(Workload, N, Json),
    Dog ! cancel,
    ok.

run("pingpong", N, Json) ->
    report(Json, "pingpong", N / pingpong(N), "rt/s");
run("fanin-k" ++ KText = Name, N, Json) ->
    K = list_to_integer(KText),
    lists:member(K, [1, 2, 8]) orelse fail("unknown workload ~s", [Name]),
    report(Json, Name, N / fanin(N, K), "msg/s");
run("ring", H, Json) ->
    report(Json, "ring", H / ring(H), "hops/s");
run("spawn", N, Json) ->
    {Seconds, BytesPerActor} = spawn_idle(N),
    report(Json, "spawn", N / Seconds, "spawn/s"),
    report(Json, "spawn-bytes", BytesPerActor, "bytes/actor");
run("skynet", Leaves, Json) ->
    {Seconds, Sum} = skynet(Leaves),
    Expected = Leaves * (Leaves - 1) div 2,
    Sum =:= Expected orelse fail("skynet sum ~b, expected ~b", [Sum, Expected]),
    report(Json, "skynet", skynet_actors(Leaves) / Seconds, "actors/s");
run("restart-fresh", N, Json) ->
    report(Json, "restart-fresh", N / quiet(fun() -> restart_fresh(N) end),
           "restarts/s");
run("restart-sustained", N, Json) ->
    report(Json, "restart-sustained",
           N / quiet(fun() -> restart_sustained(N) end), "restarts/s");
run("restart-latency", N, Json) ->
    {P50, P99} = quiet(fun() -> restart_latency(N) end),
    report(Json, "restart-latency", P50, "us-p50"),
    report(Json, "restart-latency", P99, "us-p99");
run("remote-pingpong", N, Json) ->
    Seconds = with_peer(fun(Node) -> remote_pingpong(Node, N) end),
    report(Json, "remote-pingpong", N / Seconds, "rt/s");
run("remote-pipeline", N, Json) ->
    Seconds = with_peer(fun(Node) -> remote_pipeline(Node, N) end),
    report(Json, "remote-pipeline", N / Seconds, "msg/s");
run(Other, _, _) ->
    fail("unknown workload ~s", [Other]).

%% -- output -------------------------------------------------------------------

report(Json, Workload, Value, Unit) ->
    Num = case Unit of
              "bytes/actor" -> io_lib:format("~.1f", [float(Value)]);
              "us-p" ++ _ -> io_lib:format("~.2f", [float(Value)]);
              _ -> integer_to_list(round(Value))
          end,
    case Json of
        true ->
            io:format("{\"system\":\"erlang\",\"workload\":\"~s\","
                      "\"value\":~s,\"unit\":\"~s\"}~n",
                      [Workload, Num, Unit]);
        false ->
            io:format("erlang ~s ~s ~s~n", [Workload, Num, Unit])
    end.

now_ns() -> erlang:monotonic_time(nanosecond).

seconds_since(T0) -> (now_ns() - T0) / 1.0e9.

%% -- pingpong -----------------------------------------------------------------

pingpong(N) ->
    Main = self(),
    Pong = spawn(fun pong/0),
    Ping = spawn(fun() -> receive start -> ping(Pong, N, Main) end end),
    T0 = now_ns(),
    Ping ! start,
    receive pingpong_done -> ok end,
    Seconds = seconds_since(T0),
    Pong ! stop,
    Seconds.

ping(_Pong, 0, Main) ->
    Main ! pingpong_done;
ping(Pong, N, Main) ->
    Pong ! {ping, self()},
    receive pong -> ping(Pong, N - 1, Main) end.

pong() ->
    receive
        {ping, From} -> From ! pong, pong();
        stop -> ok
    end.

%% -- fan-in -------------------------------------------------------------------

fanin(N, K) ->
    Main = self(),
    %% The receiver keeps its message queue off its heap: the setting OTP
    %% recommends for a process that receives many messages from many senders
    %% (senders need not take the receiver's main lock). With 2 schedulers it
    %% measured about 2x faster for K=2, and no slower for K=1 or K=8.
    Receiver = spawn_opt(fun() -> fanin_receiver(N, Main) end,
                         [{message_queue_data, off_heap}]),
    %% The first N rem K senders take one extra message so the total is N.
    Senders = [spawn(fun() -> receive continue -> ok end,
                              fanin_sender(Receiver, Share)
                     end)
               || I <- lists:seq(0, K - 1),
                  Share <- [N div K + case I < N rem K of
                                          true -> 1;
                                          false -> 0
                                      end]],
    T0 = now_ns(),
    [S ! continue || S <- Senders],
    receive fanin_done -> ok end,
    seconds_since(T0).

fanin_receiver(0, Main) ->
    Main ! fanin_done;
fanin_receiver(Left, Main) ->
    receive msg -> fanin_receiver(Left - 1, Main) end.

%% Sends a burst, then goes through its own mailbox before the next one.
fanin_sender(_Receiver, 0) ->
    ok;
fanin_sender(Receiver, Left) ->
    Burst = min(Left, ?BURST),
    send_burst(Receiver, Burst),
    self() ! continue,
    receive continue -> fanin_sender(Receiver, Left - Burst) end.

send_burst(_Receiver, 0) -> ok;
send_burst(Receiver, I) -> Receiver ! msg, send_burst(Receiver, I - 1).

%% -- ring ---------------------------------------------------------------------

ring(H) ->
    Main = self(),
    Nodes = [spawn(fun() -> receive {next, Next} -> ring_node(Next, H, Main) end
                   end)
             || _ <- lists:seq(1, ?RING_SIZE)],
    [First | Rest] = Nodes,
    lists:foreach(fun({Node, Next}) -> Node ! {next, Next} end,
                  lists:zip(Nodes, Rest ++ [First])),
    T0 = now_ns(),
    First ! {hop, 0},
    receive ring_done -> ok end,
    Seconds = seconds_since(T0),
    [Node ! stop || Node <- Nodes],
    Seconds.

ring_node(Next, H, Main) ->
    receive
        {hop, Count} when Count >= H ->
            Main ! ring_done,
            ring_node(Next, H, Main);
        {hop, Count} ->
            Next ! {hop, Count + 1},
            ring_node(Next, H, Main);
        stop ->
            ok
    end.

%% -- spawn --------------------------------------------------------------------

%% Memory per idle process is the growth of erlang:memory(processes) (all
%% process heaps, stacks and control blocks) while the N processes are alive
%% and waiting in receive, minus the growth of the spawner process itself (its
%% list of N pids), divided by N.
spawn_idle(N) ->
    Main = self(),
    Baseline = erlang:system_info(process_count),
    Spawner = spawn(fun() -> spawner(N, Main) end),
    receive {spawner_ready, Spawner} -> ok end,
    T0 = now_ns(),
    Spawner ! go,
    receive {spawned, Spawner} -> ok end,
    Seconds = seconds_since(T0),
    Spawner ! measure,
    Bytes = receive {bytes, Spawner, B} -> B end,
    Spawner ! stop,
    wait_process_count(Baseline),
    {Seconds, Bytes / N}.

spawner(N, Main) ->
    Mem0 = erlang:memory(processes),
    {memory, Own0} = erlang:process_info(self(), memory),
    Main ! {spawner_ready, self()},
    receive go -> ok end,
    Pids = spawn_n(N, []),
    Main ! {spawned, self()},
    receive measure -> ok end,
    wait_run_queues_empty(),
    Mem1 = erlang:memory(processes),
    {memory, Own1} = erlang:process_info(self(), memory),
    Main ! {bytes, self(), (Mem1 - Mem0) - (Own1 - Own0)},
    receive stop -> ok end,
    [P ! stop || P <- Pids],
    ok.

spawn_n(0, Acc) -> Acc;
spawn_n(I, Acc) -> spawn_n(I - 1, [spawn(fun idle/0) | Acc]).

idle() ->
    receive stop -> ok end.

%% Until every spawned process has run to its receive and gone idle.
wait_run_queues_empty() ->
    case erlang:statistics(total_run_queue_lengths) of
        0 -> ok;
        _ -> timer:sleep(1), wait_run_queues_empty()
    end.

%% Until the stopped processes are gone, so the next run starts clean.
wait_process_count(Baseline) ->
    case erlang:system_info(process_count) =< Baseline of
        true -> ok;
        false -> timer:sleep(1), wait_process_count(Baseline)
    end.

%% -- skynet -------------------------------------------------------------------

skynet(Leaves) ->
    Main = self(),
    T0 = now_ns(),
    spawn(fun() -> skynet_node(Main, 0, Leaves) end),
    Sum = receive {value, V} -> V end,
    {seconds_since(T0), Sum}.

skynet_node(Parent, Num, 1) ->
    Parent ! {value, Num};
skynet_node(Parent, Num, Size) ->
    Sub = Size div 10,
    Self = self(),
    spawn_children(Self, Num, Sub, 0),
    Parent ! {value, collect(10, 0)}.

spawn_children(_Self, _Num, _Sub, 10) ->
    ok;
spawn_children(Self, Num, Sub, I) ->
    Child = Num + I * Sub,
    spawn(fun() -> skynet_node(Self, Child, Sub) end),
    spawn_children(Self, Num, Sub, I + 1).

collect(0, Sum) -> Sum;
collect(K, Sum) -> receive {value, V} -> collect(K - 1, Sum + V) end.

skynet_actors(1) -> 1;
skynet_actors(Leaves) -> Leaves + skynet_actors(Leaves div 10).

%% -- restart ------------------------------------------------------------------

%% A one_for_one supervisor with one permanent gen_server child that exits
%% with reason `crash` when it is cast `crash`. Every restart therefore goes
%% through the whole OTP path: the gen_server's terminate, the proc_lib exit,
%% the supervisor's 'EXIT' handling, its restart-intensity bookkeeping and a
%% fresh gen_server:start_link of the child.
%%
%%   restart-fresh      N restarts in rounds of 100, each round under a newly
%%                      started supervisor (intensity 1000 in 1 s) that is
%%                      stopped at the end of the round; the time includes
%%                      starting and stopping the supervisors.
%%   restart-sustained  N restarts under one supervisor (intensity 10 N in
%%                      60 s, so it never gives up).
%%   restart-latency    N samples of the time from casting `crash` to the
%%                      registered child to the first gen_server:call(ping)
%%                      that the restarted child answers, under a fresh
%%                      supervisor (intensity 1000 in 1 s) per 100 samples;
%%                      the first 1000 are warm-up when N > 2000. p50 and p99
%%                      in microseconds.
%%
%% In fresh and sustained the child's init sends {up, self()} to the
%% benchmark process, which waits for it before it crashes the new child.
%%
%% The supervisor keeps the time of every restart within its period and walks
%% that list at each restart (supervisor:add_restart/1 in OTP 25). Under a
%% 60 s period nothing leaves the list during a run, so in sustained the
%% k-th restart costs time proportional to k: its figure depends on N
%% (perf/compare.sh runs it with N = 50000 on both sides).

%% OTP logs up to three error reports per crash (the gen_server's, the
%% proc_lib crash report and the supervisor's child_terminated); formatting
%% and printing them would cost more than the restart itself and flood stdout.
%% Troupe logs failures at a rate limit, so for these workloads the primary
%% logger level is `none`: logger:allow/2 then refuses the reports where they
%% are raised, before they are built. The level is restored after the run.
quiet(Fun) ->
    #{level := Level} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, none),
    try
        Fun()
    after
        ok = logger:set_primary_config(level, Level)
    end.

restart_fresh(N) ->
    T0 = now_ns(),
    restart_fresh_rounds(N),
    seconds_since(T0).

%% The last round takes the remainder when N is not a multiple of 100.
restart_fresh_rounds(0) ->
    ok;
restart_fresh_rounds(Left) ->
    Restarts = min(Left, ?RESTARTS_PER_SUPERVISOR),
    {Sup, Child} = start_restart_supervisor(1000, 1, self()),
    crash_and_wait(Child, Restarts),
    stop_supervisor(Sup),
    restart_fresh_rounds(Left - Restarts).

restart_sustained(N) ->
    {Sup, Child} = start_restart_supervisor(10 * N, 60, self()),
    T0 = now_ns(),
    crash_and_wait(Child, N),
    Seconds = seconds_since(T0),
    stop_supervisor(Sup),
    Seconds.

%% Crashes the current child and waits for its replacement's {up, Pid}.
crash_and_wait(_Child, 0) ->
    ok;
crash_and_wait(Child, Left) ->
    gen_server:cast(Child, crash),
    receive
        {up, Next} -> crash_and_wait(Next, Left - 1)
    end.

restart_latency(N) ->
    Samples = latency_rounds(N, []),
    Kept = case N > 2 * ?LATENCY_WARMUP of
               true -> lists:nthtail(?LATENCY_WARMUP, Samples);
               false -> Samples
           end,
    Sorted = lists:sort(Kept),
    {percentile(Sorted, 50), percentile(Sorted, 99)}.

%% A fresh supervisor for every 100 samples (started and stopped outside
%% the timed part), so that each sample measures the restart itself and not
%% the growth of the supervisor's list of recent restarts (see above).
latency_rounds(0, Acc) ->
    lists:append(lists:reverse(Acc));
latency_rounds(Left, Acc) ->
    K = min(Left, ?RESTARTS_PER_SUPERVISOR),
    {Sup, undefined} = start_restart_supervisor(1000, 1, undefined),
    Samples = latency_samples(K, []),
    stop_supervisor(Sup),
    latency_rounds(Left - K, [Samples | Acc]).

%% Samples in microseconds, in the order they were taken.
latency_samples(0, Acc) ->
    lists:reverse(Acc);
latency_samples(Left, Acc) ->
    T0 = erlang:monotonic_time(),
    gen_server:cast(?RESTART_CHILD, crash),
    ping_until_answered(),
    T1 = erlang:monotonic_time(),
    Us = erlang:convert_time_unit(T1 - T0, native, nanosecond) / 1000,
    latency_samples(Left - 1, [Us | Acc]).

%% A call that reaches the old child before it has handled `crash` dies with
%% it (reason crash); one made after it is gone and before the new child is
%% registered finds no process (noproc). Both mean the restart is still in
%% progress, so the call is repeated; anything else is a failure. The caller
%% yields before each retry: a caller that spins through its whole time slice
%% can hold the scheduler the supervisor is queued on, which measured p50
%% about 4x higher with 2 schedulers.
ping_until_answered() ->
    try gen_server:call(?RESTART_CHILD, ping) of
        pong -> ok
    catch
        exit:{noproc, _} -> erlang:yield(), ping_until_answered();
        exit:{crash, _} -> erlang:yield(), ping_until_answered()
    end.

%% Nearest rank: the smallest sample that at least P% of them do not exceed.
percentile(Sorted, P) ->
    Rank = max(1, ceil(P * length(Sorted) / 100)),
    lists:nth(Rank, Sorted).

%% Starts a supervisor linked to the caller with the restart intensity MaxR
%% in MaxT seconds. With a pid in Notify, the child is anonymous and every
%% incarnation sends {up, self()} there; returns the first one's pid. With
%% undefined, the child is registered as ?RESTART_CHILD and sends nothing.
start_restart_supervisor(MaxR, MaxT, Notify) ->
    {ok, Sup} = supervisor:start_link(?MODULE, {supervisor, MaxR, MaxT, Notify}),
    Child = case Notify of
                undefined -> undefined;
                _ -> receive {up, Pid} -> Pid end
            end,
    {Sup, Child}.

%% Stops the supervisor (and with it the child) and waits until it is gone.
%% The exit signal comes from its parent, so it shuts down even though the
%% link is removed first (which keeps the shutdown from reaching the caller).
stop_supervisor(Sup) ->
    Ref = erlang:monitor(process, Sup),
    unlink(Sup),
    exit(Sup, shutdown),
    receive {'DOWN', Ref, process, Sup, _} -> ok end.

%% supervisor callback
init({supervisor, MaxR, MaxT, Notify}) ->
    Start = case Notify of
                undefined ->
                    {gen_server, start_link,
                     [{local, ?RESTART_CHILD}, ?MODULE, {child, undefined}, []]};
                _ ->
                    {gen_server, start_link, [?MODULE, {child, Notify}, []]}
            end,
    Flags = #{strategy => one_for_one, intensity => MaxR, period => MaxT},
    Child = #{id => restart_child, start => Start, restart => permanent,
              shutdown => 5000, type => worker, modules => [?MODULE]},
    {ok, {Flags, [Child]}};
%% gen_server callbacks (the child)
init({child, undefined}) ->
    {ok, undefined};
init({child, Notify}) ->
    Notify ! {up, self()},
    {ok, Notify}.

handle_call(ping, _From, State) ->
    {reply, pong, State}.

handle_cast(crash, _State) ->
    exit(crash).

handle_info(_Msg, State) ->
    {noreply, State}.

%% -- remote -------------------------------------------------------------------

%% Two nodes, two OS processes, distributed Erlang over TCP on 127.0.0.1.
%% This node (A, started by run.sh with -name ...@127.0.0.1 and a private
%% cookie) starts the peer node B for each run with the `peer` module: B is a
%% child OS process of this node's VM (a port; peer's standard_io control
%% connection, so B is not detached and this VM reaps it), started with the
%% same +S W:W, the same cookie and this module on its code path. B halts as
%% soon as its control connection closes, so also when A is halted by the
%% watchdog. After each run A stops B and waits until B's OS process is gone.
%% Both nodes listen on 127.0.0.1 only and find each other through the
%% private epmd that run.sh started (ERL_EPMD_PORT, inherited by B); A then
%% connects to B with net_kernel:connect_node/1.
%%
%%   remote-pingpong  a process on A sends {ping, self()} to a process on B,
%%                    which answers pong; one outstanding at a time, N round
%%                    trips.
%%   remote-pipeline  a process on A sends N one-way messages to a process on
%%                    B, each a 16-byte binary <<I:64, (N - I):64>> (two 64-bit
%%                    integers), in bursts of 1000 with a turn through its own
%%                    mailbox in between (as the fan-in senders do); then
%%                    {count, self(), N}, which B answers once it has received
%%                    all N. The time runs from the first send to the answer.
%%
%% Setup is outside the timing: booting B, connecting the nodes and spawning
%% the process on B, which reports ready first. No warm-up messages.
%% Flow control is the distribution's own: a process sending to a node whose
%% output buffer holds more than dist_buf_busy_limit (1 MB by default) is
%% suspended until it drains, so A's memory stays bounded.

with_peer(Fun) ->
    node() =/= nonode@nohost orelse
        fail("remote workloads need a distributed node (use run.sh)", []),
    S = integer_to_list(erlang:system_info(schedulers)),
    Name = "troupe_perf_b_" ++ os:getpid() ++ "_"
        ++ integer_to_list(erlang:unique_integer([positive])),
    Args = ["-setcookie", atom_to_list(erlang:get_cookie()),
            "+S", S ++ ":" ++ S,
            "-start_epmd", "false",
            "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
            "-pa", filename:dirname(code:which(?MODULE))],
    {ok, Peer, Node} = peer:start_link(#{name => Name, host => "127.0.0.1",
                                         longnames => true, args => Args,
                                         connection => standard_io,
                                         wait_boot => ?PEER_BOOT_MS}),
    OsPid = peer:call(Peer, os, getpid, []),
    try
        true = net_kernel:connect_node(Node),
        Fun(Node)
    after
        peer:stop(Peer),
        wait_os_process_gone(OsPid, 100)
    end.

%% Stopping the peer closes its port, on which it halts and is reaped; this
%% waits for that (up to 5 s), so that no run overlaps the previous run's
%% peer. Past that, the peer is killed by its PID.
wait_os_process_gone(OsPid, 0) ->
    os:cmd("kill -KILL " ++ OsPid),
    ok;
wait_os_process_gone(OsPid, Tries) ->
    case file:read_file("/proc/" ++ OsPid ++ "/stat") of
        {ok, Stat} ->
            %% A zombie has exited already; its parent reaps it.
            case string:split(Stat, ") ", trailing) of
                [_, <<"Z", _/binary>>] -> ok;
                _ -> timer:sleep(50), wait_os_process_gone(OsPid, Tries - 1)
            end;
        {error, _} ->
            ok
    end.

%% Spawns Function(self()) on Node and waits until it runs there.
spawn_ready(Node, Function) ->
    Pid = spawn(Node, ?MODULE, Function, [self()]),
    receive {ready, Pid} -> Pid end.

remote_pingpong(Node, N) ->
    Main = self(),
    Pong = spawn_ready(Node, remote_pong),
    Ping = spawn(fun() -> receive start -> ping(Pong, N, Main) end end),
    T0 = now_ns(),
    Ping ! start,
    receive pingpong_done -> ok end,
    Seconds = seconds_since(T0),
    Pong ! stop,
    Seconds.

remote_pong(Main) ->
    Main ! {ready, self()},
    pong().

remote_pipeline(Node, N) ->
    Main = self(),
    Receiver = spawn_ready(Node, remote_receiver),
    Sender = spawn(fun() ->
                           receive start -> ok end,
                           pipeline_sender(Receiver, 0, N),
                           Receiver ! {count, self(), N},
                           receive
                               {counted, Count} -> Main ! {pipeline_done, Count}
                           end
                   end),
    T0 = now_ns(),
    Sender ! start,
    Count = receive {pipeline_done, C} -> C end,
    Seconds = seconds_since(T0),
    Count =:= N orelse
        fail("receiver counted ~b messages, expected ~b", [Count, N]),
    Receiver ! stop,
    Seconds.

pipeline_sender(_Receiver, N, N) ->
    ok;
pipeline_sender(Receiver, Sent, N) ->
    End = min(N, Sent + ?BURST),
    send_payloads(Receiver, Sent, End, N),
    self() ! continue,
    receive continue -> pipeline_sender(Receiver, End, N) end.

send_payloads(_Receiver, End, End, _N) ->
    ok;
send_payloads(Receiver, I, End, N) ->
    Receiver ! <<I:64, (N - I):64>>,
    send_payloads(Receiver, I + 1, End, N).

remote_receiver(Main) ->
    Main ! {ready, self()},
    pipeline_receiver(0, undefined).

%% Counts the payloads; answers {count, From, Target} once Target have
%% arrived. The answer does not rely on the request arriving last.
pipeline_receiver(Count, Pending) ->
    receive
        <<_:64, _:64>> ->
            Next = Count + 1,
            case Pending of
                {From, Next} ->
                    From ! {counted, Next},
                    pipeline_receiver(Next, undefined);
                _ ->
                    pipeline_receiver(Next, Pending)
            end;
        {count, From, Target} when Count >= Target ->
            From ! {counted, Count},
            pipeline_receiver(Count, undefined);
        {count, From, Target} ->
            pipeline_receiver(Count, {From, Target});
        stop ->
            ok
    end.
