"""The checkers of notebook 07 (what ResNet sees): ``check_grad_cam`` and ``check_map_size_predictions``.

``check_grad_cam`` runs the learner's Grad-CAM on a small ResNet18 (random weights) and compares its
maps with :func:`resnet_edu.inside.grad_cam`, first for each image's predicted class, then for classes
that the caller chooses. Where the maps differ it names the known mistake whose output they match
(each mistake below computes what Grad-CAM gives with that one step done wrongly); it never raises on
a wrong answer and never prints the code of the answer.
"""

import torch
import torch.nn.functional as F

from ..inside import grad_cam, kept_as_is, recording_outputs
from ..measure import on_meta
from ..resnet import resnet18
from .engine import (ATOL, FAILED, SEED, Mistake, call_learner, catalogue, checking, explain_exception,
                     matching_mistake, randomise_batchnorm, reporting_crashes, same_values)
from .predictions import PREDICTION_MISTAKES, Question, check_predictions

IMAGES_SHAPE = (4, 3, 64, 48)  # not square, so that a height and a width swapped show
LAYER = "layer3"  # a 4x3 map for a 64x48 image: coarse, like the maps of notebook 07

NO_GRAPH = ("The gradient needs the graph that the forward pass records, and under torch.no_grad() (or "
            "torch.inference_mode()) none is recorded: run the model without torch.no_grad() around it, and take "
            "the gradient with respect to the recorded output itself, not a .detach() of it")
AUTOGRAD_HINTS = [
    ("does not require grad", f"the class scores carry no gradient. {NO_GRAPH}"),
    ("can't retain_grad on Tensor that has requires_grad=False", f"the recorded output has no gradient to keep. "
            f"{NO_GRAPH}"),
    ("cannot register a hook on a tensor that doesn't require gradient", f"the recorded output has no gradient "
            f"to hook. {NO_GRAPH}"),
    ("appears to not have been used in the graph", "the recorded output is not part of the computation of the "
            "scores: record it and compute the logits in the same forward pass"),
    ("backward through the graph a second time", "the gradient was taken twice from one forward pass: take it "
            "once, for all images together (their scores summed)"),
    ("grad can be implicitly created only for scalar outputs", "torch.autograd.grad needs one number: sum the "
            "images' scores (each image's score depends on its own map only, so the sum keeps them apart)"),
    ("'tuple' object has no attribute", "torch.autograd.grad returns a tuple: "
            "(gradients,) = torch.autograd.grad(...)"),
]


def _explain(exc):
    text = explain_exception(exc)
    for needle, hint in AUTOGRAD_HINTS:
        if needle in str(exc):
            return f"{text}. In plain words: {hint}"
    return text


# ---------------------------------------------------------------------------------------- known mistakes

def _scores(logits, classes, kind):
    """The number whose gradient a (mistaken) Grad-CAM takes."""
    rows = torch.arange(len(logits))
    if kind == "probability":  # after the softmax
        return logits.softmax(1)[rows, classes].sum()
    if kind == "all_images_classes":  # logits[:, classes]: every image scored on every image's class
        return logits[:, classes].sum()
    return logits[rows, classes].sum()


def layer_gradients(model, images, layer, classes, score="logit"):
    """The layer's output for ``images`` and the gradient of the (maybe mistaken) score with respect to it."""
    with recording_outputs(model, [layer]) as outputs:
        logits = model(images)
    (gradients,) = torch.autograd.grad(_scores(logits, classes, score), outputs[layer])
    return outputs[layer].detach(), gradients


def mistaken_grad_cam(activations, gradients, size, *, average=True, relu=True, resize="bilinear", scale="each_map",
                      scale_before_resize=False):
    """Grad-CAM's maps from a layer's output and gradient (:func:`layer_gradients`) with one step changed,
    to recognise a learner's mistake by its output. With the defaults it is Grad-CAM itself (the tests
    check that it equals resnet_edu.inside.grad_cam). ``relu``: True, False, "abs" (absolute values
    instead) or "after_resize"; ``scale``: "each_map", "batch", "min_max" or None."""
    dims = (0, 2, 3) if average == "batch" else (2, 3)  # "batch": over the images too, one weight for all
    weights = gradients.mean(dim=dims, keepdim=True) if average else gradients
    maps = (weights * activations).sum(1, keepdim=True)
    maps = maps.abs() if relu == "abs" else F.relu(maps) if relu is True else maps
    if scale_before_resize:
        maps = maps / _peaks(maps)
    if resize is not None:
        align = {} if resize == "nearest" else {"align_corners": resize.endswith("corners")}
        maps = F.interpolate(maps, size=size, mode=resize.split("_")[0], **align)
    maps = F.relu(maps[:, 0]) if relu == "after_resize" else maps[:, 0]
    if scale == "each_map" and not scale_before_resize:
        maps = maps / _peaks(maps)
    elif scale == "min_max":
        maps = maps - maps.flatten(1).min(1).values[:, None, None]
        maps = maps / _peaks(maps)
    elif scale == "batch":
        maps = maps / maps.max().clamp_min(1e-30)
    return maps


def _peaks(maps):
    """Each map's largest value (at least 1e-30, so a map of zeros stays zeros), shaped to divide the maps."""
    return maps.flatten(1).max(1).values.clamp_min(1e-30).view(-1, *[1] * (maps.dim() - 1))


MIN_MAX_SCALING = ("each map's smallest value was subtracted before the division (min-max scaling, as some "
                   "Grad-CAM libraries do)")

# Each known mistake: its output is the arguments of mistaken_grad_cam that give the learner's maps. The
# first that matches is named.
GRAD_CAM_MISTAKES = [
    Mistake("no-relu", "no ReLU", dict(relu=False),
            "no ReLU: the maps have negative values, where the channels add up to evidence "
            "against the class. Grad-CAM keeps only the evidence for the class: set the negative sums to zero "
            "before you resize and scale"),
    Mistake("abs-instead-of-relu", "absolute value instead of ReLU", dict(relu="abs"),
            "the negative sums became positive: the absolute value turns evidence against the class into "
            "evidence for it. Which function keeps the positive sums and sets the negative ones to zero?"),
    Mistake("relu-after-resize", "ReLU after the resize", dict(relu="after_resize"),
            "the ReLU came after the resize, so wherever positive and negative cells meet (on a grid this coarse, "
            "much of the map) the resize mixed the negative sums into the map before they were cut off. On which "
            "grid does Grad-CAM set the negative sums to zero: the layer's or the image's?"),
    Mistake("pixelwise-weights", "gradient times activation, pixel by pixel", dict(average=False),
            "each pixel is weighted by the gradient at that same pixel (gradient times "
            "activation). Grad-CAM gives each channel one weight: the gradient averaged over the whole map, the "
            "channel's importance for the class"),
    Mistake("weights-averaged-over-batch", "weights averaged over the batch", dict(average="batch"),
            "the weights were averaged over the batch too, so every image gets the same "
            "channel weights. Average each image's gradient over its own map only (its height and width): one "
            "weight per channel and image"),
    Mistake("gradient-of-probability", "gradient of the probability", dict(score="probability"),
            "the gradient is that of the softmax probability (or of its log, which gives the same maps). "
            "Grad-CAM takes the "
            "gradient of the class's score before the softmax (its logit): the probability also depends on every "
            "other class's logit"),
    Mistake("scores-of-all-images", "every image's scores summed", dict(score="all_images_classes"),
            "each image's map uses the scores of every image's class (the "
            "logits of all images for all the classes asked for). Take one score per image: image i's logit for "
            "classes[i]"),
    Mistake("maps-not-scaled", "maps not scaled", dict(scale=None),
            "the maps are not scaled: Grad-CAM divides each map by its own largest value, so "
            "that every map runs from 0 to 1"),
    Mistake("scaled-over-batch", "scaled by the batch's largest value", dict(scale="batch"),
            "all maps were divided by the largest value of the whole batch: divide each map "
            "by its own largest value, so that every map reaches 1"),
    Mistake("min-max-scaled", "min-max scaling", dict(scale="min_max"),
            f"{MIN_MAX_SCALING}, so a map whose every pixel has some evidence drops to 0 at its weakest one. Here "
            "0 means no evidence: what must the scaling leave where it was?"),
    Mistake("min-max-scaled", "min-max scaling", dict(relu=False, scale="min_max"),
            f"{MIN_MAX_SCALING} and there was no ReLU first, so the strongest evidence against the class became 0 and "
            "every other pixel was lifted above it. Here 0 means no evidence: what has to happen to the "
            "negative sums, and what must the scaling leave where it was?"),
    Mistake("scaled-before-resize", "scaled before resizing", dict(scale_before_resize=True),
            "the maps were scaled before they were resized, so the resize leaves "
            "their peaks a little below 1: resize first, then scale each map"),
    Mistake("nearest-resize", "nearest-neighbour resize", dict(resize="nearest"),
            "the maps were resized with nearest-neighbour interpolation (blocks): resize "
            "bilinearly (align_corners=False, PyTorch's default), so the map varies smoothly over the image"),
    Mistake("bicubic-resize", "bicubic resize", dict(resize="bicubic"),
            "the maps were resized bicubically: resize bilinearly (align_corners=False)"),
    Mistake("align-corners-resize", "resize with align_corners=True", dict(resize="bilinear_corners"),
            "the maps were resized with align_corners=True: use "
            "align_corners=False, PyTorch's default, which treats pixels as squares rather than points"),
]


# ---------------------------------------------------------------------------------------- Grad-CAM

def _small_model():
    """A ResNet18 with the ImageNet stem and random weights (BatchNorm given non-trivial statistics)."""
    torch.manual_seed(0)
    model = resnet18(num_classes=10, stem="imagenet")
    randomise_batchnorm(model, torch.Generator().manual_seed(0))
    return model.eval()


def _model_and_images():
    """The model and the images of the check, the same on every run.

    A network with random weights gives random images nearly the same logits (what the images share
    outweighs what sets them apart), so it would predict one class for all of them, and a Grad-CAM that
    gives every image the first image's prediction would pass. The classifier's bias is set so that each
    class's mean logit over the images is 0: each image is then predicted as the class where it stands
    out (the bias changes no gradient, so no map). With these images (seed SEED) the four predictions
    differ and each has evidence to show; the tests check both."""
    model = _small_model()
    images = torch.randn(IMAGES_SHAPE, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        model.fc.bias -= model(images).mean(0)
    return model, images


def _evidence(model, images):
    """(N, classes), True where image i's Grad-CAM map for class c has some positive evidence."""
    return torch.stack([grad_cam(model, images, LAYER, c)[0].flatten(1).amax(1) > 0
                        for c in range(model.fc.out_features)], 1)


def _other_classes(logits, evidence):
    """For each image a class other than its prediction, no two images the same, the most likely one
    whose map has some evidence to show (:func:`_evidence`; failing that, the most likely one)."""
    chosen = []
    for ranking, shown in zip(logits.argsort(1, descending=True).tolist(), evidence.tolist()):
        candidates = [c for c in ranking[1:] if c not in chosen]
        chosen.append(next((c for c in candidates if shown[c]), candidates[0]))
    return torch.tensor(chosen)


def _classes_without_evidence(evidence):
    """For each image a class whose Grad-CAM map is empty (no positive evidence), or None if an image
    has no such class: the case where a map must stay 0 rather than be divided by its zero peak."""
    chosen = [next((c for c, shown in enumerate(row) if not shown), None) for row in evidence.tolist()]
    return None if None in chosen else torch.tensor(chosen)


GRAD_CAM_MISTAKE_IDS = catalogue(GRAD_CAM_MISTAKES, {
    "not-callable": "the answer is not a function",
    "function-raises": "calling the learner's function raised an exception",
    "hook-left-attached": "a forward hook stays attached to the model",
    "not-maps-and-classes": "the function did not return (maps, classes)",
    "maps-not-a-tensor": "the maps are not a tensor",
    "wrong-map-shape": "the maps do not have the images' shape (N, H, W)",
    "predicted-class-used": "each image's predicted class was used although classes were given",
    "first-image-class-for-all": "classes=None: every image got the first image's predicted class",
    "wrong-classes-returned": "the classes returned are not those the maps are for",
    "maps-not-finite": "the maps contain NaN or infinite values",
    "maps-differ": "the maps differ from Grad-CAM's in no known way",
    "check-could-not-finish": "the learner's code broke the check itself",
})


def _call(result, candidate, model, images, classes):
    """The learner's (maps, classes), or None with a FAIL line."""
    with kept_as_is(model):  # a learner's model.train() cannot change what later comparisons use
        answer = call_learner(result, "calling it", candidate, model, images.clone(), LAYER, classes,
                              mistake="function-raises", explain=_explain)
    if answer is FAILED:
        return None
    if any(module._forward_hooks for module in model.modules()):
        result.fail("hook-left-attached",
                    "a forward hook is still attached to the model after your function returned, so every "
                    "later forward pass runs it: record inside `with recording_outputs(...)`, or call "
                    "handle.remove() on the handle that register_forward_hook returned")
    if isinstance(answer, torch.Tensor) or not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        result.fail("not-maps-and-classes",
                    f"expected (maps, classes), as grad_cam returns them; got {type(answer).__name__}: end "
                    "with return maps, classes")
        return None
    return answer


def _shape_problem(maps, images, layer_shape):
    """A FAIL line when the maps do not have the shape (N, H, W) of the images, else None."""
    expected = (images.shape[0], *images.shape[-2:])
    got = tuple(maps.shape)
    if got == expected:
        return None
    text = f"expected one map per image the size of the image, shape {expected}; got {got}"
    if got == (images.shape[0], *layer_shape):
        return f"{text}: the layer's {layer_shape[0]}x{layer_shape[1]} map, not resized to the image's " \
               f"{expected[1]}x{expected[2]}. Resize each map to images.shape[-2:] (bilinear)"
    if got == (images.shape[0], 1, *expected[1:]):
        return f"{text}: drop the channel dimension of size 1"
    if got == (images.shape[0], expected[2], expected[1]):
        return f"{text}: height and width are swapped (images are (N, 3, H, W))"
    return text


def _other_class_used(result, maps, used, model, images, classes, what):
    """A FAIL line, and True, when the maps or the classes returned show that the answer took another
    class than the one asked for: the prediction although classes were given, or, with classes=None,
    the first image's prediction for every image."""
    predicted_maps, predicted = grad_cam(model, images, LAYER)
    if classes is not None:
        if same_values(maps, predicted_maps):
            found = f"these are the maps of each image's predicted class, {predicted.tolist()}"
        elif used == predicted.tolist():
            found = (f"the classes returned are each image's predicted class, {predicted.tolist()}, not the "
                     f"classes given, {classes.tolist()}")
        else:
            return False
        result.fail("predicted-class-used",
                    f"{what}: {found}; when classes is given, take the gradient of image i's logit for "
                    "classes[i] and return classes (use the prediction only when classes is None)")
        return True
    first = int(predicted[0])
    if used in ([first], [first] * len(images)):
        found = f"the classes returned are {used}"
    elif same_values(maps, grad_cam(model, images, LAYER, first)[0]):
        found = f"every map is that of class {first}"
    else:
        return False
    result.fail("first-image-class-for-all",
                f"{what}: {found}, the first image's prediction (the argmax of logits[0], a habit of code "
                f"written for one image), but the images' own predictions are {predicted.tolist()}: take each "
                "image's own, logits.argmax(1), one class per image")
    return True


def _compare(result, maps, expected, variants, what):
    """ok when the maps equal Grad-CAM's; otherwise the FAIL line of the first known mistake they match."""
    if same_values(maps, expected):
        result.ok(f"{what}: the maps equal Grad-CAM's (each peaks at 1, 0 where there is no evidence)")
        return
    mistake = matching_mistake(maps, GRAD_CAM_MISTAKES, lambda m: variants(**m.output))
    if mistake is not None:
        result.fail(mistake.id, f"{what}: {mistake.explanation}")
        return
    if not torch.isfinite(maps).all():
        result.fail("maps-not-finite",
                    f"{what}: the maps contain NaN or infinite values; check each division (a map that is 0 "
                    "everywhere must stay 0)")
        return
    difference = (maps - expected).abs()
    image = int(difference.flatten(1).max(1).values.argmax())
    peaks = maps.flatten(1).max(1).values
    clues = []
    if maps.min() < -ATOL:
        clues.append(f"the maps go down to {maps.min():.3g}, but Grad-CAM has no negative values (a ReLU)")
    if ((peaks > ATOL) & ((peaks - 1).abs() > ATOL)).any():  # an empty map's peak of 0 is no scaling clue
        clues.append(f"the maps' largest values are {[round(p, 3) for p in peaks.tolist()]}, but each map "
                     "with any evidence peaks at 1")
    empty = [i for i, (p, q) in enumerate(zip(peaks, expected.flatten(1).max(1).values)) if p <= ATOL < q]
    if empty:
        clues.append(f"the map of image {empty[0]} is 0 everywhere, where Grad-CAM finds evidence for the class: "
                     "check that the score is each image's class logit, with its sign (a loss's gradient "
                     "points the other way)")
    result.fail("maps-differ",
                f"{what}: the maps differ from Grad-CAM's by up to {difference.max():.3g} (image {image}). "
                + ("; ".join(clues) + ". " if clues else "")
                + "Go through the steps in order: the gradient of each image's class logit with respect to "
                  "the layer's output, averaged over the map (one weight per channel), the weighted sum of "
                  "the channels, a ReLU, the resize to the image, the scaling of each map to a peak of 1")


def _check_case(result, candidate, model, images, classes, expected_classes, what):
    """One call of the learner's function: the classes it used, the shape of its maps, their values."""
    answer = _call(result, candidate, model, images, classes)
    if answer is None:
        return
    maps, used = answer
    if not isinstance(maps, torch.Tensor):
        result.fail("maps-not-a-tensor", f"{what}: expected the maps as a tensor (N, H, W); got {type(maps).__name__}")
        return
    maps = maps.detach().float().cpu()
    with torch.no_grad(), recording_outputs(model, [LAYER]) as outputs:
        model(images)
    problem = _shape_problem(maps, images, tuple(outputs[LAYER].shape[-2:]))
    if problem:
        result.fail("wrong-map-shape", f"{what}: {problem}")
        return
    try:
        used = torch.as_tensor(used).reshape(-1).cpu().tolist()
    except Exception:  # anything that is not a sequence of class indices
        used = type(used).__name__
    expected = grad_cam(model, images, LAYER, expected_classes)[0]
    right_maps = same_values(maps, expected)
    if not right_maps and _other_class_used(result, maps, used, model, images, classes, what):
        return
    if used != expected_classes.tolist():
        result.fail("wrong-classes-returned",
                    f"{what}: " + ("the maps are right, but the classes returned are not the ones they are "
                                   "for: " if right_maps else "")
                    + f"expected the classes {expected_classes.tolist()} back, the ones the maps are for; "
                      f"got {used}")
        return

    gradients = {}  # one backward pass per kind of score, shared by the mistakes that use it

    def variants(score="logit", **mistake):
        if score not in gradients:
            gradients[score] = layer_gradients(model, images, LAYER, expected_classes, score)
        return mistaken_grad_cam(*gradients[score], images.shape[-2:], **mistake)

    _compare(result, maps, expected, variants, what)


def check_grad_cam(candidate):
    """``candidate(model, images, layer, classes=None) -> (maps (N, H, W) in [0, 1], classes (N,))``,
    as :func:`resnet_edu.inside.grad_cam`, on a ResNet18 in eval mode with random weights."""
    n, _, height, width = IMAGES_SHAPE
    title = (f"Checking {getattr(candidate, '__name__', 'your function')} on a ResNet18 (random weights, eval "
             f"mode), {n} images of {height}x{width}, layer {LAYER!r}:")
    with checking("grad_cam", title, GRAD_CAM_MISTAKE_IDS) as result:
        if not callable(candidate):
            result.fail("not-callable", f"expected a function my_grad_cam(model, images, layer, classes=None); got "
                        f"{type(candidate).__name__}")
            return result
        model, images = _model_and_images()
        with torch.no_grad():
            logits = model(images)
        with reporting_crashes(result, explain=_explain):  # the learner's output may break a comparison
            _check_case(result, candidate, model, images, None, logits.argmax(1),
                        "classes=None (each image's predicted class)")
            evidence = _evidence(model, images)
            others = _other_classes(logits, evidence)
            _check_case(result, candidate, model, images, others, others,
                        f"classes={others.tolist()} (not the predicted ones)")
            empty = _classes_without_evidence(evidence)
            if empty is not None and not result.failures:
                _check_case(result, candidate, model, images, empty, empty,
                            f"classes={empty.tolist()} (no evidence for them: each map must stay 0)")
    return result


# ---------------------------------------------------------------------------------------- predictions

def smallest_side_for(stem, side=4, layer="layer4"):
    """The smallest square image for which ResNet18 with ``stem`` gives ``layer`` a map of at least
    ``side`` x ``side``, measured on the meta device (shapes only, no arithmetic). A larger image never
    gives a smaller map, so a bisection over the sizes finds it."""
    model = on_meta(resnet18, num_classes=10, stem=stem).eval()

    def map_side(size):
        with recording_outputs(model, [layer]) as outputs:
            model(torch.empty(1, 3, size, size, device="meta"))
        return min(outputs[layer].shape[-2:])

    low, high = model.min_input_size, 1024  # map_side(high) >= side, checked below
    if map_side(high) < side:
        raise ValueError(f"no image up to 1024x1024 gives {layer} a {side}x{side} map")
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if map_side(middle) >= side else (middle + 1, high)
    return low


MAP_SIZE_QUESTIONS = [
    Question("smallest_side_imagenet_stem",
             "1. the smallest square image (its side in pixels) for which ResNet18 with the ImageNet stem "
             "gives layer4 a map of at least 4x4", lambda: smallest_side_for("imagenet"),
             hint="Count the layers with stride 2 up to the end of layer4 (stem included): each halves the "
                  "side, rounding up (notebook 03). Which sides end at 4 or more?"),
    Question("smallest_side_cifar_stem",
             "2. the same with the CIFAR stem", lambda: smallest_side_for("cifar"),
             hint="The CIFAR stem has no stride: only the stages that halve the resolution count."),
]


def check_map_size_predictions(answers):
    """Notebook 07's predict-then-check question: which image size gives layer4 a map Grad-CAM can use."""
    return check_predictions("map_size_predictions", "Checking your predictions against measurements",
                             MAP_SIZE_QUESTIONS, answers)


MISTAKE_IDS = catalogue(GRAD_CAM_MISTAKE_IDS, PREDICTION_MISTAKES)  # every mistake this module's checkers can report
