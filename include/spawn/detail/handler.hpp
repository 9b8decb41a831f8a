#pragma once

// Not API: turns a user's handler (a callable taking `Context<S>&` and optionally an input)
// into the erased `ActionFn`.

#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "spawn/context.hpp"
#include "spawn/detail/actor_spec.hpp"
#include "spawn/payload.hpp"
#include "spawn/result.hpp"
#include "spawn/value.hpp"

namespace spawn::detail {

/// Marks a template argument to be deduced from the handler's signature.
struct Deduce {};

template <class F>
struct CallableTraits : CallableTraits<decltype(&std::remove_cvref_t<F>::operator())> {};

template <class Ret, class... Args>
struct CallableTraits<Ret (*)(Args...)> {
  using args = std::tuple<Args...>;
};

template <class Ret, class... Args>
struct CallableTraits<Ret(Args...)> {
  using args = std::tuple<Args...>;
};

template <class Ret, class C, class... Args>
struct CallableTraits<Ret (C::*)(Args...)> {
  using args = std::tuple<Args...>;
};

template <class Ret, class C, class... Args>
struct CallableTraits<Ret (C::*)(Args...) const> {
  using args = std::tuple<Args...>;
};

template <class Ret, class C, class... Args>
struct CallableTraits<Ret (C::*)(Args...) noexcept> {
  using args = std::tuple<Args...>;
};

template <class Ret, class C, class... Args>
struct CallableTraits<Ret (C::*)(Args...) const noexcept> {
  using args = std::tuple<Args...>;
};

template <class Args>
struct InputFromArgs {
  static_assert(sizeof(Args) == 0,
                "an action handler takes (spawn::Context<S>&) or (spawn::Context<S>&, const In&)");
};

template <class First>
struct InputFromArgs<std::tuple<First>> {
  using type = void;
};

template <class First, class Second>
struct InputFromArgs<std::tuple<First, Second>> {
  using type = std::remove_cvref_t<Second>;
};

/// The input type of handler `F`: its second parameter without cv/ref, or void when it has one.
template <class F>
using InputOf = typename InputFromArgs<typename CallableTraits<F>::args>::type;

/// What handler `F` returns when called for actors of state `S` with input `In` (void: none).
template <class S, class In, class F>
struct ReturnOf {
  using type = std::invoke_result_t<F&, Context<S>&, const In&>;
};

template <class S, class F>
struct ReturnOf<S, void, F> {
  using type = std::invoke_result_t<F&, Context<S>&>;
};

template <class T>
struct IsValue : std::false_type {};

template <class S, class R>
struct IsValue<Value<S, R>> : std::true_type {};

template <class T>
struct IsResult : std::false_type {};

template <class T>
struct IsResult<Result<T>> : std::true_type {};

/// The reply type `R` of what a handler returns (Value<S, R>, Result<Value<S, R>>, or void).
template <class T>
struct ReplyOf {
  using type = void;
};

template <class S, class R>
struct ReplyOf<Value<S, R>> {
  using type = R;
};

template <class S, class R>
struct ReplyOf<Result<Value<S, R>>> {
  using type = R;
};

Error state_error(const InvocationView& view, const Error& error);
Error input_error(const InvocationView& view, const Error& error);

template <class S, class T>
Result<ValueData> to_value_data(T&& returned) {
  using U = std::remove_cvref_t<T>;
  if constexpr (IsValue<U>::value) {
    static_assert(std::is_same_v<typename U::state_type, S>,
                  "an action must return a spawn::Value of its actor's state type");
    return std::move(returned).release();
  } else if constexpr (IsResult<U>::value) {
    if (!returned) {
      return std::move(returned).error();
    }
    if constexpr (std::is_void_v<typename U::value_type>) {
      return ValueData{};
    } else {
      return to_value_data<S>(std::move(returned).value());
    }
  } else {
    static_assert(IsValue<U>::value || IsResult<U>::value,
                  "an action must return spawn::Value<S, R>, spawn::Result<spawn::Value<S, R>>, "
                  "spawn::Result<void> or void");
    return ValueData{};
  }
}

/// Makes the erased action of handler `fn` for actors of state type `S` with input `In` (void:
/// no input).
template <class S, class In, class F>
ActionSpec make_action(F fn) {
  ActionSpec spec;
  if constexpr (!std::is_void_v<In>) {
    static_assert(Payload<In>, "an action's input must be a protobuf message or spawn::Json");
    spec.input_type_url = type_url_of<In>();
  }
  spec.fn = [fn = std::move(fn)](const InvocationView& view) -> Result<ValueData> {
    S state{};
    if constexpr (Payload<S>) {
      if (const google::protobuf::Any* any = view.state(); any != nullptr) {
        Result<void> unpacked = unpack_into(*any, state);
        if (!unpacked) {
          return state_error(view, unpacked.error());
        }
      }
    }
    Context<S> context(view, std::move(state));
    if constexpr (std::is_void_v<In>) {
      using Ret = std::invoke_result_t<const F&, Context<S>&>;
      if constexpr (std::is_void_v<Ret>) {
        std::invoke(fn, context);
        return ValueData{};
      } else {
        return to_value_data<S>(std::invoke(fn, context));
      }
    } else {
      In input{};
      if (const google::protobuf::Any* any = view.payload(); any != nullptr) {
        Result<void> unpacked = unpack_into(*any, input);
        if (!unpacked) {
          return input_error(view, unpacked.error());
        }
      }
      using Ret = std::invoke_result_t<const F&, Context<S>&, const In&>;
      if constexpr (std::is_void_v<Ret>) {
        std::invoke(fn, context, std::as_const(input));
        return ValueData{};
      } else {
        return to_value_data<S>(std::invoke(fn, context, std::as_const(input)));
      }
    }
  };
  return spec;
}

}  // namespace spawn::detail
