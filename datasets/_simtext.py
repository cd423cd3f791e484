"""Prospectus text for simbond: two sections assembled from template variants, with planted risk phrases.

Each firm gets an "Important Notice" and a "Risk Factors" section in the register of Chinese exchange bond
prospectuses (in English). Sentences are drawn from several variants per slot and filled with firm fields
(issuer name, province, rating, amounts), so no two firms read alike. The signal is the planted risk
phrases of :data:`PHRASES`: each appears with a probability that rises with the firm's latent risk and with
the affinity between the phrase's channel and the firm's stress pathway, so performing firms carry some
too. Risk Factors draws them far more readily than Important Notice, which is mostly boilerplate.

Everything is vectorised over firms with numpy ``StringDType`` arrays: one pass per sentence slot, none
per firm.
"""

from __future__ import annotations

import numpy as np
from numpy.dtypes import StringDType

_S = StringDType()
CHANNELS = ("liquidity", "leverage", "profitability")

# planted phrase -> (channel it speaks to, or "general"; sentences that carry it verbatim)
PHRASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "refinancing pressure": ("liquidity", (
        "A large share of the issuer's interest-bearing debt falls due within the next two years, and the "
        "issuer faces considerable refinancing pressure if bank credit tightens.",
        "Should financing channels narrow, the issuer may come under refinancing pressure on its maturing "
        "bonds and bank loans.",
        "The concentration of debt maturities in the coming years creates refinancing pressure for the "
        "issuer.",
    )),
    "liquidity shortfall": ("liquidity", (
        "If collections from customers are delayed, the issuer may experience a liquidity shortfall when "
        "meeting its short-term obligations.",
        "Much of the issuer's monetary funds is restricted, and a liquidity shortfall may arise in the event "
        "of concentrated repayments.",
        "A liquidity shortfall could arise should operating cash inflows fall below scheduled debt service.",
    )),
    "negative operating cash flow": ("liquidity", (
        "The issuer recorded negative operating cash flow in recent reporting periods, mainly owing to large "
        "project expenditures and slow settlement of receivables.",
        "Continued negative operating cash flow would increase the issuer's dependence on external "
        "financing.",
    )),
    "restricted assets": ("liquidity", (
        "A significant portion of the issuer's holdings are restricted assets pledged as collateral for "
        "bank borrowings.",
        "The issuer's restricted assets, including pledged land use rights and frozen deposits, limit its "
        "financing flexibility.",
    )),
    "high leverage": ("leverage", (
        "The issuer operates with high leverage, and its debt-to-asset ratio remains above the industry "
        "average.",
        "Owing to high leverage, any increase in financing costs would weigh materially on the issuer's "
        "solvency.",
        "The issuer's high leverage limits its capacity to raise additional debt on favourable terms.",
    )),
    "guarantee obligations": ("leverage", (
        "The issuer has provided external guarantees to other enterprises; if the guaranteed parties fail "
        "to repay, the issuer may have to perform its guarantee obligations.",
        "Outstanding guarantee obligations to related and unrelated parties represent a contingent "
        "liability that could crystallise.",
        "The balance of the issuer's guarantee obligations is large relative to its net assets.",
    )),
    "covenant breach": ("leverage", (
        "A covenant breach under the issuer's loan agreements could trigger cross-default and accelerated "
        "repayment of other debt.",
        "Certain financial ratios are close to the thresholds set in the credit agreements, and a covenant "
        "breach cannot be ruled out.",
    )),
    "pledged equity": ("leverage", (
        "A large proportion of the controlling shareholder's stake is pledged equity, and a forced sale "
        "could lead to a change of control.",
        "The controlling shareholder has pledged equity in the issuer to secure its own borrowings.",
    )),
    "declining profitability": ("profitability", (
        "The issuer has reported declining profitability as competition intensified and input prices rose.",
        "Declining profitability in the core business may weaken the issuer's ability to service its debt.",
    )),
    "going concern": ("profitability", (
        "Sustained operating losses may cast substantial doubt on the issuer's ability to continue as a "
        "going concern.",
        "The auditor has drawn attention to matters that may affect the issuer's status as a going concern.",
    )),
    "asset impairment": ("profitability", (
        "Large provisions for asset impairment on receivables and inventories could further reduce the "
        "issuer's net profit.",
        "The issuer may have to recognise asset impairment losses on projects whose returns fall short of "
        "expectations.",
    )),
    "reliance on government subsidies": ("profitability", (
        "The issuer's net profit shows heavy reliance on government subsidies, which may not continue in "
        "future periods.",
        "Given its reliance on government subsidies, a change in local fiscal policy would hit the issuer's "
        "earnings.",
    )),
    "related-party receivables": ("general", (
        "Related-party receivables account for a large share of current assets, and their recovery is "
        "uncertain.",
        "The issuer holds substantial related-party receivables whose collection depends on the finances "
        "of affiliated companies.",
    )),
    "pending litigation": ("general", (
        "The issuer is involved in pending litigation whose outcome may require significant compensation.",
        "Pending litigation with contractors and creditors may divert management attention and resources.",
    )),
}

_NOTICE_SLOTS: tuple[tuple[str, ...], ...] = (
    (
        "The issuer and all members of its board of directors warrant that the contents of this prospectus "
        "are true, accurate and complete, and contain no false records, misleading statements or material "
        "omissions.",
        "The issuer undertakes that the information disclosed in this prospectus is true, accurate and "
        "complete, and assumes legal liability for its contents.",
        "All directors, supervisors and senior managers of {issuer} guarantee the truthfulness, accuracy "
        "and completeness of this prospectus.",
    ),
    (
        "Registration of the bonds with the {exchange} does not constitute any judgement on the investment "
        "value of the bonds or a guarantee of their returns.",
        "Any decision or opinion of the {exchange} on this issue does not represent an assessment of the "
        "issuer's solvency or the investment risk of the bonds.",
    ),
    (
        "After a comprehensive assessment by {agency}, the issuer's long-term credit rating is {rating} and "
        "the rating of the bonds is {rating}, with a {outlook} outlook.",
        "{agency} has assigned the issuer a credit rating of {rating} with a {outlook} outlook.",
        "The issuer's entity credit rating, assigned by {agency}, is {rating}; the outlook is {outlook}.",
    ),
    (
        "As of the end of the latest reporting period, the issuer's net assets amounted to RMB {na} hundred "
        "million and its debt-to-asset ratio was {da}%.",
        "At the latest balance sheet date the issuer reported net assets of RMB {na} hundred million, with "
        "a debt-to-asset ratio of {da}%.",
    ),
    (
        "The bonds are issued in a total amount of up to RMB {amount} hundred million with a term of {term} "
        "years.",
        "The issue size is not more than RMB {amount} hundred million, and the bonds have a maturity of "
        "{term} years.",
    ),
    (
        "Investors who subscribe for, purchase or otherwise lawfully acquire the bonds are deemed to accept "
        "the bondholders' meeting rules and the bond trustee agreement.",
        "By holding the bonds, investors agree to be bound by the resolutions of the bondholders' meeting.",
    ),
)

_RISK_SLOTS: tuple[tuple[str, ...], ...] = (
    (
        "Affected by the macroeconomic situation, monetary policy and the international environment, market "
        "interest rates may fluctuate over the term of the bonds and change their investment value.",
        "Changes in market interest rates during the life of the bonds may cause their market price to "
        "fluctuate.",
        "Because the bonds bear a fixed rate, a rise in market interest rates would reduce their value.",
    ),
    (
        "The bonds may not be actively traded after listing, and investors may be unable to sell them at "
        "the desired time or price.",
        "There is no assurance that an active trading market for the bonds will develop after listing.",
    ),
    (
        "The issuer's operations are sensitive to changes in national industrial policy and local "
        "government planning.",
        "Adjustments in regulatory policy could affect the issuer's business model and financing channels.",
        "Economic cycles may affect demand for the issuer's products and services.",
    ),
    (
        "The issuer's operating results may differ materially from forecasts because of factors beyond its "
        "control.",
        "Management's ability to control subsidiaries across regions is subject to governance risk.",
    ),
    (
        "During the term of the bonds, the rating agency may lower the credit rating of the issuer or the "
        "bonds, which would affect their market price.",
        "Any downgrade of the issuer's credit rating by {agency} during the term of the bonds may reduce "
        "their liquidity and value.",
        "The credit rating of the bonds is subject to regular tracking reviews and may change.",
    ),
    (
        "Although the issuer has arranged repayment safeguards, unforeseeable changes in its operations may "
        "prevent it from performing them in full.",
        "The bonds are unsecured, and repayment depends on the issuer's own operating results and cash "
        "flows.",
        "If the issuer's operations deteriorate, the repayment safeguards set out in this prospectus may not "
        "fully protect bondholders.",
    ),
)

_COMFORT = (
    "The issuer has maintained good credit records with its lending banks and holds ample unused credit "
    "facilities.",
    "Strong support from the shareholder and diversified financing channels underpin the issuer's "
    "repayment capacity.",
    "The issuer's stable operating cash inflows provide a solid source of debt repayment.",
)

# per industry (order of simbond.INDUSTRIES): issuer name cores, a notice sentence, risk factor sentences
_INDUSTRY_NAMES: tuple[tuple[str, ...], ...] = (
    ("Urban Construction Investment Group", "City Development Investment Group",
     "Infrastructure Construction Group", "State-owned Capital Operation Group",
     "Urban and Rural Construction Group"),
    ("Real Estate Development Group", "Property Holdings", "Land Development Group",
     "Housing Construction Group"),
    ("Heavy Industry Group", "Machinery Group", "Chemical Industry Group", "Iron and Steel Group",
     "New Materials Technology"),
    ("Energy Investment Group", "Electric Power Group", "Coal Industry Group", "Water Affairs Group",
     "Gas Group"),
    ("Highway Traffic Construction Group", "Port Group", "Railway Investment Group", "Airport Group",
     "Logistics Group"),
    ("Commercial Group", "International Trade Group", "Tourism Development Group", "Cultural Industry Group",
     "Supply Chain Management"),
)
_INDUSTRY_NOTICE: tuple[tuple[str, ...], ...] = (
    ("The issuer is the principal platform for infrastructure construction and urban development in "
     "{province}.",
     "The issuer undertakes land consolidation and public projects entrusted by the {province} government."),
    ("The issuer develops residential and commercial property, mainly in {province}.",
     "The issuer's property projects are concentrated in second- and third-tier cities of {province}."),
    ("The issuer is a leading manufacturer in {province} with a complete industrial chain.",
     "The issuer's manufacturing bases are located in {province} and export to overseas markets."),
    ("The issuer supplies power, heat and water under regulated tariffs in {province}.",
     "The issuer is the main energy investment platform of {province}."),
    ("The issuer invests in, builds and operates toll roads and ports in {province}.",
     "The issuer is responsible for the construction and operation of transport infrastructure in "
     "{province}."),
    ("The issuer operates department stores, trading and tourism businesses in {province}.",
     "The issuer's commercial and trading operations are concentrated in {province}."),
)
_INDUSTRY_RISK: tuple[tuple[str, ...], ...] = (
    ("Project settlement by the local government is slow, and the issuer's receivables from government "
     "entities are large.",
     "Changes in the regulation of local government financing vehicles may restrict the issuer's financing."),
    ("Real estate control policies and mortgage restrictions may reduce the issuer's contracted sales.",
     "Land reserves and properties under development account for a large share of the issuer's assets."),
    ("Fluctuations in raw material prices may compress the issuer's gross margin.",
     "Overcapacity in the industry may lead to intense price competition."),
    ("Tariff adjustments and fuel price fluctuations may affect the issuer's profitability.",
     "Large capital expenditure on new capacity may increase the issuer's debt burden."),
    ("Toll standards are set by the government, and toll-free holiday policies reduce the issuer's revenue.",
     "Traffic volumes depend on regional economic activity and competing routes."),
    ("Consumer demand is sensitive to the economic cycle and to competition from online retail.",
     "Trade receivables and prepayments tie up a large share of the issuer's working capital."),
)
_PROVINCES = (
    "Gansu", "Jiangsu", "Zhejiang", "Shandong", "Henan", "Hunan", "Hubei", "Sichuan", "Guizhou", "Yunnan",
    "Anhui", "Jiangxi", "Fujian", "Guangdong", "Guangxi", "Shaanxi", "Shanxi", "Hebei", "Liaoning", "Jilin",
    "Chongqing", "Tianjin", "Inner Mongolia", "Xinjiang", "Qinghai",
)
_AGENCIES = (
    "China Chengxin International Credit Rating", "China Lianhe Credit Rating", "Dagong Global Credit Rating",
    "Shanghai Brilliance Credit Rating", "Golden Credit Rating", "Pengyuan Credit Rating",
)
_EXCHANGES = ("Shanghai Stock Exchange", "Shenzhen Stock Exchange")
_RATINGS = np.array(["AA-", "AA", "AA+", "AAA"], dtype=_S)


def _pick(rng: np.random.Generator, variants: tuple[str, ...], n: int) -> np.ndarray:
    return np.asarray(variants, dtype=_S)[rng.integers(len(variants), size=n)]


def _pick_by(rng: np.random.Generator, table: tuple[tuple[str, ...], ...], group: np.ndarray) -> np.ndarray:
    """One variant per firm from the row of ``table`` chosen by its group (industry)."""
    out = np.empty(len(group), dtype=_S)
    for g, variants in enumerate(table):
        rows = np.flatnonzero(group == g)
        out[rows] = _pick(rng, variants, len(rows))
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def prospectus_text(
    rng: np.random.Generator,
    *,
    industry: np.ndarray,
    risk: np.ndarray,
    affinity: np.ndarray,
    size: np.ndarray,
    net_assets: np.ndarray,
    debt_ratio: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both sections for every firm, and which phrases were planted.

    ``risk`` is the firm's latent text risk (about standard normal for performing firms), ``affinity``
    [n, 3] its weight on each of :data:`CHANNELS`. Returns ``(notice, risk_factors, planted)`` with the
    sections as string arrays and ``planted`` a bool [n, len(PHRASES)] (phrase in either section).
    """
    n = len(risk)
    grade = np.digitize(0.7 * size - 0.6 * risk + rng.normal(0.0, 0.5, n), [-1.0, 0.0, 1.0])
    province = _pick(rng, _PROVINCES, n)
    fields = {
        "{issuer}": province + " " + _pick_by(rng, _INDUSTRY_NAMES, industry) + " Co., Ltd.",
        "{province}": province,
        "{exchange}": _pick(rng, _EXCHANGES, n),
        "{agency}": _pick(rng, _AGENCIES, n),
        "{rating}": _RATINGS[grade],
        "{outlook}": np.where(risk + rng.normal(0.0, 0.7, n) > 1.5, "negative", "stable").astype(_S),
        "{na}": np.char.mod("%.2f", net_assets).astype(_S),
        "{da}": np.char.mod("%.2f", debt_ratio).astype(_S),
        "{amount}": np.char.mod("%d", rng.choice([5, 8, 10, 15, 20, 30, 50], n)).astype(_S),
        "{term}": np.char.mod("%d", rng.choice([3, 5, 7, 10], n)).astype(_S),
    }

    def sentence(variants: tuple[str, ...], by_industry: tuple[tuple[str, ...], ...] = ()) -> np.ndarray:
        """One variant per firm with its fields filled in (only the placeholders the variants use)."""
        out = _pick_by(rng, by_industry, industry) if by_industry else _pick(rng, variants, n)
        for key in {k for k in fields for v in (variants or sum(by_industry, ())) if k in v}:
            out = np.strings.replace(out, key, fields[key])
        return out

    def optional(piece: np.ndarray, present: np.ndarray) -> np.ndarray:
        return np.where(present, " " + piece, "")

    chan = {c: affinity[:, i] for i, c in enumerate(CHANNELS)} | {"general": np.zeros(n)}
    planted = np.zeros((n, len(PHRASES)), dtype=bool)
    # the first sentence of each section is always there and carries no leading space
    notice = [sentence(_NOTICE_SLOTS[0]), " " + sentence(_NOTICE_SLOTS[1])]
    notice += [" " + sentence((), _INDUSTRY_NOTICE)] + [" " + sentence(v) for v in _NOTICE_SLOTS[2:]]
    factors = [sentence((), _INDUSTRY_RISK)]
    factors += [optional(sentence(variants), rng.random(n) < 0.8) for variants in _RISK_SLOTS]
    for j, (channel, sentences) in enumerate(PHRASES.values()):
        pull = risk + 1.2 * chan[channel]
        in_factors = rng.random(n) < _sigmoid(-3.0 + 0.8 * pull)
        in_notice = rng.random(n) < _sigmoid(-4.2 + 0.5 * pull)
        factors.append(optional(sentence(sentences), in_factors))
        notice.append(optional(sentence(sentences), in_notice))
        planted[:, j] = in_factors | in_notice
    factors.append(optional(sentence(_COMFORT), rng.random(n) < _sigmoid(0.3 - 1.2 * risk)))
    return _concat(notice), _concat(factors), planted


def _concat(pieces: list[np.ndarray]) -> np.ndarray:
    """Elementwise concatenation in a balanced tree: each character is copied log(k) times, not k times."""
    while len(pieces) > 1:
        pairs = [pieces[i:i + 2] for i in range(0, len(pieces), 2)]
        pieces = [pair[0] + pair[1] if len(pair) == 2 else pair[0] for pair in pairs]
    return pieces[0]
