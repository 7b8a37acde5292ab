"""Made-up but believable product data for the demo catalogue: a title, a price in euros, a brand and a link on
the reserved domain shop.example, derived from each photo's label and id (deterministic, so re-running the
demo builder gives the same catalogue). Nothing here claims anything about a real shop or product."""

from __future__ import annotations

import hashlib
import re

BRANDS = (
    "Northwind",
    "Alder Lane",
    "Fenwick & Co",
    "Maple Thread",
    "Kestrel",
    "Oakridge Basics",
    "Saltmarsh",
    "Juniper Row",
)
# Per label: the words a shop would use for it, and a price range in euros.
CATALOGUE_WORDS = {
    "Blazer": (("Tailored", "Single-breasted", "Linen-blend", "Relaxed", "Wool-blend"), "blazer", (79, 189)),
    "Blouse": (("Floral", "Silky", "Puff-sleeve", "Button-front", "Lightweight"), "blouse", (29, 69)),
    "Body": (("Cotton", "Ribbed", "Long-sleeve", "Printed", "Organic"), "bodysuit", (12, 29)),
    "Dress": (("Wrap", "Midi", "Summer", "Shirt", "Pleated", "Jersey"), "dress", (39, 119)),
    "Hat": (("Wool", "Knitted", "Bucket", "Baseball", "Wide-brim"), "hat", (15, 45)),
    "Hoodie": (("Zip-up", "Fleece", "Oversized", "Organic cotton", "Classic"), "hoodie", (35, 79)),
    "Longsleeve": (("Striped", "Ribbed", "Cotton", "Henley", "Waffle-knit"), "long-sleeve top", (19, 45)),
    "Outwear": (("Quilted", "Waterproof", "Padded", "Wool", "Lightweight"), "jacket", (69, 229)),
    "Pants": (("Slim", "Chino", "Wide-leg", "Tapered", "Cargo", "Straight"), "trousers", (35, 99)),
    "Polo": (("Piqué", "Classic", "Slim-fit", "Knitted", "Cotton"), "polo shirt", (25, 59)),
    "Shirt": (("Oxford", "Linen", "Checked", "Poplin", "Denim"), "shirt", (29, 79)),
    "Shoes": (("Leather", "Canvas", "Suede", "Running", "Everyday"), "shoes", (39, 149)),
    "Shorts": (("Chino", "Denim", "Sports", "Linen", "Cargo"), "shorts", (19, 49)),
    "Skirt": (("Pleated", "A-line", "Denim", "Midi", "Wrap"), "skirt", (25, 69)),
    "T-Shirt": (("Organic cotton", "Graphic", "Crew-neck", "Relaxed", "Essential", "Pocket"), "T-shirt", (9, 29)),
    "Top": (("Cropped", "Ribbed", "Tank", "Camisole", "Jersey"), "top", (15, 39)),
    "Undershirt": (("Cotton", "Ribbed", "Seamless", "Classic", "Stretch"), "undershirt", (8, 19)),
}
PRODUCT_COLUMNS = ("title", "price", "currency", "product_url", "brand")


def demo_product(label: str, image_id: str, kids: bool = False) -> dict[str, str]:
    """The product columns for one photo; a label outside CATALOGUE_WORDS gets a plain title."""
    digest = hashlib.sha256(image_id.encode()).digest()
    styles, noun, (low, high) = CATALOGUE_WORDS.get(label, (("Classic",), label.lower(), (19, 49)))
    title = f"{styles[digest[0] % len(styles)]} {noun}"
    if kids:
        title = f"Kids' {title[0].lower()}{title[1:]}"
    # Shop-like prices: whole euros ending in 9, or .99, inside the label's range.
    euros = low + digest[1] * (high - low) // 255
    price = f"{euros - euros % 10 + 9}.00" if digest[2] % 2 else f"{euros}.99"
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return {
        "title": title,
        "price": price,
        "currency": "EUR",
        "product_url": f"https://shop.example/products/{slug}-{image_id[:8]}",
        "brand": BRANDS[digest[3] % len(BRANDS)],
    }
