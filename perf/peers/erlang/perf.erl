%% Erlang/OTP peer for the Troupe comparison workloads.
%%
%% Started by run.sh as
%%   erl -noshell +S W:W -run perf main WORKLOAD N RUNS FORMAT
%% where N is a number or "default" and FORMAT is "text" or "json".
%%
%% Every run prints "erlang <workload> <value> <unit>" (or one JSON object);
%% spawn also prints a "spawn-bytes" line. The workloads use plain processes,
%% `!` and `receive` only (plus one spawn option for the fan-in receiver). Each run is guarded by a watchdog process that halts
%% the node with status 1 when the run takes longer than 120 s.

-module(perf).
-export([main/1]).

-define(RUN_LIMIT_MS, 120000).
-define(BURST, 1000).
-define(RING_SIZE, 503).

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
run(Other, _, _) ->
    fail("unknown workload ~s", [Other]).

%% -- output -------------------------------------------------------------------

report(Json, Workload, Value, Unit) ->
    Num = case Unit of
              "bytes/actor" -> io_lib:format("~.1f", [float(Value)]);
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
